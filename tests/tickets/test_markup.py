"""Log text in tickets is text in every target markup; templates are overridable and checked."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from tests.tickets.hitdata import HOSTILE
from tickets import adf
from tickets.errors import SinkConfigError
from tickets.markup import ZWSP, JiraWiki, Markdown, Markup, Textile
from tickets.model import Sample
from tickets.templates import Renderer, example_incident, shell_arg

MD = MarkdownIt("commonmark")
LOG_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\u2028\u2029\x85"),
    max_size=200,
)
LOG_LINES = st.lists(LOG_TEXT, min_size=1, max_size=4).map("\n".join)


@settings(max_examples=150, deadline=None)
@given(LOG_TEXT)
def test_markdown_inline_text_renders_as_exactly_that_text(s: str) -> None:
    tokens = MD.parseInline(Markdown().text(s))
    children = [c for t in tokens for c in (t.children or [])]
    assert {c.type for c in children} <= {"text"}, [c.type for c in children]  # no link, html, emphasis
    assert "".join(c.content for c in children) == " ".join(s.split())


@settings(max_examples=150, deadline=None)
@given(LOG_TEXT.filter(str.strip))
def test_markdown_text_is_one_paragraph_of_that_text(s: str) -> None:
    tokens = MD.parse(Markdown().text(s))  # block level: no list, heading, quote or rule either
    assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"]
    assert {c.type for c in tokens[1].children or []} <= {"text"}
    assert "".join(c.content for c in tokens[1].children or []) == " ".join(s.split())


@settings(max_examples=150, deadline=None)
@given(LOG_LINES)
def test_markdown_code_block_holds_the_lines_verbatim(s: str) -> None:
    tokens = MD.parse(Markdown().code(s))
    assert [t.type for t in tokens] == ["fence"]
    assert tokens[0].content == s + "\n"


@settings(max_examples=100, deadline=None)
@given(LOG_LINES)
def test_adf_code_block_holds_the_lines_verbatim(s: str) -> None:
    doc = adf.from_markdown(Markdown().code(s))
    [block] = doc["content"]
    assert block["type"] == "codeBlock"
    assert (block["content"][0]["text"] if block["content"] else "") == s


@settings(max_examples=100, deadline=None)
@given(LOG_TEXT)
def test_adf_inline_text_is_the_text(s: str) -> None:
    doc = adf.from_markdown("- " + Markdown().bold("Where") + ": " + Markdown().text(s))
    [lst] = doc["content"]
    para = lst["content"][0]["content"][0]
    assert para["content"][0] == {"type": "text", "text": "Where", "marks": [{"type": "strong"}]}
    assert adf.to_text(para).replace("Where", "", 1) == ": " + " ".join(s.split())


def test_textile_entities_stop_markup_and_redmine_links() -> None:
    t = Textile().text("*x* _y_ <b>z</b> #12 commit:abc [[Wiki]] 08:59:30 tls-unknown")
    assert not set("*_<>[]") & set(t)
    assert " #12" not in t and "&#35;12" in t and "commit&#58;abc" in t
    assert "08:59:30" in t and "tls-unknown" in t, "times and hyphenated words stay readable"
    block = Textile().code("a </pre> b <PRE> c")
    assert block.count("</pre>") == 1 and block.endswith("</pre>") and f"<{ZWSP}/pre>" in block


def test_jira_escapes_and_noformat() -> None:
    j = JiraWiki()
    assert (
        j.text("*bold* {color:red} [~admin] a-b -x-")
        == "\\*bold\\* \\{color:red\\} \\[\\~admin\\] a-b \\-x\\-"
    )
    assert j.text(r"\\ex01\share") == f"\\{ZWSP}\\ex01\\share", "\\\\ would be a line break"
    block = j.code("x {noformat} y")
    assert (
        block.count("{noformat}") == 2 and block.startswith("{noformat}\n") and block.endswith("\n{noformat}")
    )


def test_plain_text_cannot_open_a_servicenow_code_tag() -> None:
    p = Markup()
    assert "[code]" not in p.text("x [code]<img src=x>[/code]").lower()
    assert "[code]" not in p.code("[CODE]<b>[/code]").lower()


def test_every_markup_renders_the_bundled_templates_with_hostile_text() -> None:
    inc = dataclasses.replace(example_incident(), group_key=HOSTILE, samples=[Sample("a.log", 1, 2, HOSTILE)])
    for m in (Markup(), Markdown(), Textile(), JiraWiki()):
        title, body = Renderer(m).render("open", inc, seq=4)
        assert title.startswith("[HIGH] Example (")
        assert "knownfix-key: " + inc.token + " seq: 4" in body, m.name


def test_a_long_body_keeps_its_marker() -> None:
    inc = dataclasses.replace(
        example_incident(), samples=[Sample("a.log", i, i, "x" * 1900) for i in range(5)]
    )
    _, body = Renderer(Markdown()).render("open", inc, seq=2, max_body=3000)
    assert len(body) <= 3000 and body.rstrip().endswith(f"`knownfix-key: {inc.token} seq: 2`")


def test_templates_can_be_overridden(tmp_path: Path) -> None:
    (tmp_path / "title.j2").write_text("{{ inc.group_key }}: {{ inc.rule_title }}")
    title, body = Renderer(Markdown(), tmp_path).render("open", example_incident(), seq=1)
    assert title == "host=ex01: Example"
    assert "Documented fix" in body, "templates not overridden come from the bundle"


def test_a_broken_template_stops_start_up_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "update.j2").write_text("ok\n{{ inc.no_such_field }}\n")
    with pytest.raises(SinkConfigError, match=r"update\.j2:2.*no_such_field"):
        Renderer(Markdown(), tmp_path).check()
    (tmp_path / "update.j2").write_text("{% if %}")
    with pytest.raises(SinkConfigError, match=r"update\.j2:1"):
        Renderer(Markdown(), tmp_path).check()


@settings(max_examples=40, deadline=None)
@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters="\n\t"), min_size=1
    )
    .map(str.strip)
    .filter(bool)
)
def test_the_query_command_in_tickets_pastes_back_to_the_same_sql(sql: str) -> None:
    out = subprocess.run(
        ["bash", "-c", "printf %s " + shell_arg(sql)], capture_output=True, text=True, timeout=10
    )
    assert out.stdout == sql

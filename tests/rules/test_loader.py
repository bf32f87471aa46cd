"""Loading rules: every problem found at once, each with file, line and what to change."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.errors import RuleLoadError
from rules.loader import load_rules
from tests.rules.helpers import FIX, dedent, load_only, rules_file


def problems(path: Path) -> list[str]:
    return [str(p) for p in load_rules([path], library=False).problems]


def test_unknown_field_names_file_line_and_the_valid_fields(tmp_path: Path) -> None:
    path = rules_file(
        tmp_path,
        dedent("""
        rules:
          - id: typo-rule
            title: t
            table: smtp
            match:
              event: "*"
              contxt|contains: UnknownCredentials
        """)
        + FIX,
    )
    found = problems(path)
    assert len(found) == 1
    assert found[0].startswith(f"{path}:7: unknown field `contxt` in table smtp")
    assert "did you mean `context`?" in found[0]
    assert "date_time, connector_id" in found[0]  # the valid fields are listed


def test_every_problem_of_every_file_is_reported(tmp_path: Path) -> None:
    first = rules_file(
        tmp_path,
        "rules:\n"
        "  - id: bad-regex\n"
        "    title: t\n"
        "    table: smtp\n"
        "    match:\n"
        "      data|regex: '(?<=lookbehind)x'\n" + FIX + "  - id: bad-key\n"
        "    title: t\n"
        "    table: smtp\n"
        "    severty: high\n"
        "    match: {event: x}\n" + FIX,
        "a.yaml",
    )
    second = rules_file(
        tmp_path,
        "rules:\n"
        "  - id: bad-threshold\n"
        "    title: t\n"
        "    table: smtp\n"
        "    match: {tls_error: UnknownCredentials}\n"
        "    threshold: {count: 3, windw: 1m}\n" + FIX,
        "b.yaml",
    )
    rs = load_rules([first.parent], library=False)
    text = "\n".join(str(p) for p in rs.problems)
    assert len(rs.problems) == 4, text
    assert f"{first}:6: `data|regex`: '(?<=lookbehind)x' does not compile in RE2" in text
    assert f"{first}:18: unknown key 'severty'; valid keys here: id, title, description, severity" in text
    assert f"{second}:6: unknown key 'windw'; valid keys here: count, window, distinct" in text
    assert f"{second}:6: missing `threshold.window`" in text
    with pytest.raises(RuleLoadError, match="and 3 more problem"):
        rs.raise_for_problems()


@pytest.mark.parametrize(
    ("match", "message"),
    [
        ("{context|contain: x}", "unknown modifier 'contain'"),
        ("{remote_ip|cidr: 10.0.0.0/33}", "is not an IPv4 network"),
        ("{reply_code: '451x'}", "holds numbers (int32); write '451x' as a number"),
        ("{reply_code|gt: many}", "compares numbers; 'many' is not a number"),
        ("{date_time: '2016-07-19'}", "is a time"),
        ("[a, b]", "a condition is a mapping"),
        ("{any: x}", "`any:` takes a list of conditions"),
    ],
)
def test_bad_field_tests_are_explained(tmp_path: Path, match: str, message: str) -> None:
    path = rules_file(
        tmp_path, f"rules:\n  - id: r-one\n    title: t\n    table: smtp\n    match: {match}\n" + FIX
    )
    found = problems(path)
    assert found and message in found[0], found
    assert found[0].startswith(f"{path}:5:"), found


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = rules_file(tmp_path, "rules:\n  - id: x\n    title: [unclosed\n")
    found = problems(path)
    assert len(found) == 1 and found[0].startswith(f"{path}:4: not valid YAML"), found


def test_duplicate_ids_and_unknown_tables(tmp_path: Path) -> None:
    body = "  - id: same-id\n    title: t\n    table: {table}\n    match: {{event: x}}\n" + FIX.replace(
        "\n    ", "\n    "
    )
    path = rules_file(tmp_path, "rules:\n" + body.format(table="smtp") + body.format(table="smpt"))
    text = "\n".join(problems(path))
    assert "rule id same-id is already defined" in text
    assert "unknown table 'smpt'" not in text  # the duplicate is dropped before its table is checked
    path = rules_file(tmp_path, "rules:\n" + body.format(table="smpt"), "other.yaml")
    assert "unknown table 'smpt'" in "\n".join(problems(path))


def test_a_signature_needs_a_fix_and_references(tmp_path: Path) -> None:
    path = rules_file(
        tmp_path, "rules:\n  - id: no-fix\n    title: t\n    table: smtp\n    match: {event: x}\n"
    )
    assert any("needs a fix" in p for p in problems(path))


def test_references_must_be_urls_or_seed_files(tmp_path: Path) -> None:
    path = rules_file(
        tmp_path,
        "rules:\n  - id: bad-ref\n    title: t\n    table: smtp\n    match: {event: x}\n"
        + FIX.replace("seed:000_d70211bf42e44658.txt", "my notes"),
    )
    assert any("reference 'my notes' must be a URL or seed:" in p for p in problems(path))


def test_header_driven_tables_are_checked_against_what_the_examples_parse_into(tmp_path: Path) -> None:
    iis = (
        "#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n#Date: 2024-03-04 10:00:00\n"
        "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) "
        "cs(Referer) sc-status sc-substatus sc-win32-status time-taken\n"
    )
    line = "2024-03-04 10:00:01 10.0.0.5 GET /Microsoft-Server-ActiveSync - 443 - 10.0.9.9 Apple-iPhone - 403 7 0 15\n"
    rule = (
        "rules:\n  - id: iis-rule\n    title: t\n    table: iis\n    match: {{{field}: 403}}\n"
        + FIX
        + "    examples:\n      match: [{{header: iis, text: '{line}'}}]\n"
    )
    header = "headers:\n  iis: |\n" + "".join(f"    {h}\n" for h in iis.splitlines())
    good = rules_file(tmp_path, header + rule.format(field="sc_status", line=line.strip()), "good.yaml")
    assert load_only(good).schemas["iis-rule"].has("sc_substatus")
    bad = rules_file(tmp_path, header + rule.format(field="sc_statuss", line=line.strip()), "bad.yaml")
    assert any("unknown field `sc_statuss` in table iis" in p for p in problems(bad))


def test_the_library_loads_without_problems() -> None:
    rs = load_rules()
    assert not rs.problems, [str(p) for p in rs.problems]
    assert len(rs.rules) >= 40
    for rule in rs.rules:
        assert rule.examples.match, f"{rule.id} has no example that must match"
        assert rule.fix is not None and rule.references, rule.id

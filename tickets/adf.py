"""Atlassian Document Format for Jira REST v3, built from the Markdown the templates render.

Jira v3 takes descriptions and comments only as ADF (a JSON tree). Rendering the templates in
Markdown and converting here keeps one set of templates. Only what ``markup.Markdown`` emits is
understood: headings, ``-``/``1.`` lists, fenced blocks, ``**bold**``, ``<url>``, ``[label](<url>)``,
`` `mono` `` and backslash escapes. ADF text nodes are literal, so nothing in them needs escaping.
"""

from __future__ import annotations

import re
from typing import Any

Node = dict[str, Any]

_FENCE = re.compile(r"^(`{3,})(\w*)\s*$")
_HEADING = re.compile(r"^(#{1,6}) (.*)$")
_BULLET = re.compile(r"^- (.*)$")
_ORDERED = re.compile(r"^\d+\. (.*)$")
_INLINE = re.compile(
    r"\\(?P<esc>[!-/:-@\[-`{-~])"
    r"|\*\*(?P<bold>(?:\\.|[^*\\])+)\*\*"
    r"|\[(?P<label>(?:\\.|[^\]\\])+)\]\(<(?P<lurl>[^>]+)>\)"
    r"|<(?P<url>https?://[^>\s]+)>"
    r"|(?P<ticks>`+) ?(?P<mono>.*?) ?(?P=ticks)"
)


def _unescape(s: str) -> str:
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", s)


def inline(s: str) -> list[Node]:
    """Text nodes (with strong/link/code marks) for one line of Markdown."""
    nodes: list[Node] = []

    def add(text: str, marks: list[Node] | None = None) -> None:
        if not text:
            return
        if nodes and not marks and not nodes[-1].get("marks"):
            nodes[-1]["text"] += text
            return
        node: Node = {"type": "text", "text": text}
        if marks:
            node["marks"] = marks
        nodes.append(node)

    pos = 0
    for m in _INLINE.finditer(s):
        add(s[pos : m.start()])
        pos = m.end()
        if m.group("esc"):
            add(m.group("esc"))
        elif m.group("bold"):
            add(_unescape(m.group("bold")), [{"type": "strong"}])
        elif m.group("label"):
            add(_unescape(m.group("label")), [{"type": "link", "attrs": {"href": m.group("lurl")}}])
        elif m.group("url"):
            add(m.group("url"), [{"type": "link", "attrs": {"href": m.group("url")}}])
        else:
            add(m.group("mono"), [{"type": "code"}])
    add(s[pos:])
    return nodes


def _paragraph(lines: list[str]) -> Node:
    content: list[Node] = []
    for i, line in enumerate(lines):
        if i:
            content.append({"type": "hardBreak"})
        content.extend(inline(line))
    return {"type": "paragraph", "content": content}


def _list_item(text: str) -> Node:
    return {"type": "listItem", "content": [_paragraph([text])]}


def from_markdown(md: str) -> Node:
    """An ADF ``doc`` for ``md``."""
    lines = md.splitlines()
    blocks: list[Node] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            blocks.append(_paragraph(para))
            para.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            flush()
            ticks, body = fence.group(1), []
            i += 1
            while i < len(lines) and not re.fullmatch(rf"`{{{len(ticks)},}}\s*", lines[i]):
                body.append(lines[i])
                i += 1
            text = "\n".join(body)
            block: Node = {"type": "codeBlock", "content": [{"type": "text", "text": text}] if text else []}
            if fence.group(2):
                block["attrs"] = {"language": fence.group(2)}
            blocks.append(block)
        elif m := _HEADING.match(line):
            flush()
            blocks.append(
                {"type": "heading", "attrs": {"level": len(m.group(1))}, "content": inline(m.group(2))}
            )
        elif _BULLET.match(line) or _ORDERED.match(line):
            flush()
            kind = "bulletList" if _BULLET.match(line) else "orderedList"
            pattern = _BULLET if kind == "bulletList" else _ORDERED
            items = []
            while i < len(lines) and (m2 := pattern.match(lines[i])):
                items.append(_list_item(m2.group(1)))
                i += 1
            blocks.append({"type": kind, "content": items})
            continue
        elif not line.strip():
            flush()
        else:
            para.append(line)
        i += 1
    flush()
    return {"type": "doc", "version": 1, "content": blocks}


def to_text(node: Node) -> str:
    """All text of an ADF tree, blocks on their own lines (to find the body marker in v3 text)."""
    kind = node.get("type")
    if kind == "text":
        return str(node.get("text", ""))
    if kind == "hardBreak":
        return "\n"
    children = node.get("content") or []
    sep = "" if kind in {"paragraph", "heading", "codeBlock"} else "\n"
    return sep.join(to_text(c) for c in children)

"""The W3C header: directive lines (``#Fields:`` and friends) and the layout they put in force.

Directives are few (five per header) and irregular across products, so a pyparsing grammar reads
them: that is where a grammar pays off. The data lines between two headers never go through it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyparsing as pp

#: ``#Name: value``; the value may be empty (``#Fields:`` without names is reported, not dropped).
_NAME = pp.Word(pp.alphas, pp.alphanums + "-_")
DIRECTIVE = (
    pp.Suppress(pp.Literal("#"))
    + _NAME("name")
    + pp.Suppress(pp.Literal(":"))
    + pp.Opt(pp.White(" \t")).suppress()
    + pp.Regex(r".*")("value")
).leave_whitespace()

#: A field name is anything but the separator; IIS separates with spaces, Exchange with commas.
_COMMA_FIELDS = pp.DelimitedList(pp.Regex(r"[^,]+"), delim=",", allow_trailing_delim=False)
_SPACE_FIELDS = pp.OneOrMore(pp.Word(pp.printables))

SMTP_FIELDS = (
    "date-time",
    "connector-id",
    "session-id",
    "sequence-number",
    "local-endpoint",
    "remote-endpoint",
    "event",
    "data",
    "context",
)

#: Column names a W3C field may not take: they are added by the parser itself.
RESERVED_COLUMNS = frozenset({"raw", "source_file", "source_offset", "line_number", "_version"})


class DirectiveError(ValueError):
    """A ``#`` line that is not a well-formed directive; the message is the reject reason."""


@dataclass(frozen=True)
class Directive:
    name: str
    value: str


def parse_directive(text: str) -> Directive:
    """``#Fields: a,b`` -> Directive("Fields", "a,b"); raises DirectiveError with the reason."""
    try:
        parsed = DIRECTIVE.parse_string(text, parse_all=True)
    except pp.ParseBaseException:
        raise DirectiveError("not a W3C directive (expected '#Name: value')") from None
    return Directive(str(parsed["name"]), str(parsed["value"]).strip())


def parse_fields(value: str) -> tuple[list[str], str]:
    """Field names of a ``#Fields:`` value and the separator of the data lines (``,`` or `` ``)."""
    value = value.strip()
    if not value:
        raise DirectiveError("#Fields header lists no fields")
    try:
        if "," in value:
            names = [n.strip() for n in _COMMA_FIELDS.parse_string(value, parse_all=True)]
            sep = ","
        else:
            names = list(_SPACE_FIELDS.parse_string(value, parse_all=True))
            sep = " "
    except pp.ParseBaseException as exc:
        raise DirectiveError(f"#Fields header cannot be read: {exc.msg}") from None
    if any(not n for n in names):
        raise DirectiveError("#Fields header has an empty field name")
    return names, sep


_CAMEL_1 = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL_2 = re.compile(r"([a-z0-9])([A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def snake_case(name: str) -> str:
    """``date-time`` -> ``date_time``, ``cs(User-Agent)`` -> ``cs_user_agent``, ``HTTPStatus`` -> ``http_status``."""
    s = _CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", name))
    s = _NON_WORD.sub("_", s.lower()).strip("_")
    if not s:
        return "field"
    return f"f_{s}" if s[0].isdigit() else s


def column_names(fields: list[str]) -> list[str]:
    """Snake-cased, unique column names for ``fields`` that never collide with parser columns."""
    out: list[str] = []
    seen: set[str] = set()
    for name in fields:
        col = snake_case(name)
        if col in RESERVED_COLUMNS:
            col = f"{col}_field"
        base, n = col, 2
        while col in seen:
            col, n = f"{base}_{n}", n + 1
        seen.add(col)
        out.append(col)
    return out


_VERSION_TAIL = re.compile(r"(\s+v?[0-9][0-9.]*)+\s*$")


def slug(text: str) -> str:
    """Table-name part for a log type or product: ``HttpProxy Logs`` -> ``httpproxy_logs``."""
    s = _NON_WORD.sub("_", _VERSION_TAIL.sub("", text).lower()).strip("_")
    return s[:56].rstrip("_")


#: What kind of table a header feeds; decides the typed columns.
SMTP, MESSAGE_TRACKING, GENERIC = "smtp", "message_tracking", "generic"


@dataclass(frozen=True)
class Layout:
    """How the data lines under one ``#Fields:`` header are split, typed and stored."""

    table: str
    kind: str
    fields: tuple[str, ...]
    columns: tuple[str, ...]
    separator: str
    direction: str | None = None

    @property
    def quoted(self) -> bool:
        """Exchange quotes fields CSV-style; IIS replaces spaces with ``+`` and never quotes."""
        return self.separator == ","


def layout_for(fields: list[str], separator: str, log_type: str | None, software: str | None) -> Layout:
    """Pick the table of a header from the directives in force (content, never the file name)."""
    columns = tuple(column_names(fields))
    lt = (log_type or "").strip()
    low = lt.lower()
    if tuple(f.lower() for f in fields) == SMTP_FIELDS and separator == ",":
        direction = "send" if "send" in low else "receive" if "receive" in low else None
        return Layout("smtp", SMTP, tuple(fields), columns, separator, direction)
    if low == "message tracking log":
        return Layout("message_tracking", MESSAGE_TRACKING, tuple(fields), columns, separator)
    sw = (software or "").strip()
    if "internet information services" in sw.lower():
        return Layout("iis", GENERIC, tuple(fields), columns, separator)
    name = slug(lt) or slug(sw) or "log"
    return Layout(f"w3c_{name}", GENERIC, tuple(fields), columns, separator)

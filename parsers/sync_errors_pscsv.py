"""Records of a PowerShell ``Export-Csv`` file, each with the byte offset and line it starts at.

``Export-Csv`` quotes every value, may begin with ``#TYPE <.NET type>``, and keeps newlines
inside quoted values, so one record can span lines: a record ends at the first line end where
the quotes seen so far balance. Reading line by line keeps memory at one record and gives every
record (and every reject) a real position in the file.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from parsers.text import Line, read_lines, sniff_text

#: Largest record (in lines) before the reader gives up on an unbalanced quote.
MAX_RECORD_LINES = 10_000


@dataclass
class CsvRecord:
    offset: int
    line_number: int
    fields: list[str] | None  # None: a broken record, see ``problem``
    raw: str
    problem: str | None = None


def header_key(name: str) -> str:
    """Column names compared without case, spaces, dashes or underscores."""
    return re.sub(r"[\s_\-]", "", name).lower()


def sniff_header(head: bytes) -> list[str] | None:
    """The header of an Export-Csv (or similar) file, as normalised keys; None if not CSV-like."""
    text = sniff_text(head)
    if text is None:
        return None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if lines and lines[0].startswith("#TYPE"):
        lines = lines[1:]
    if not lines or "," not in lines[0]:
        return None
    try:
        fields = next(csv.reader([lines[0]]))
    except (csv.Error, StopIteration):
        return None
    return [header_key(f) for f in fields]


def records(path: Path) -> Iterator[tuple[list[str], Iterator[CsvRecord]]]:
    """Yield once: the header fields, and an iterator over the data records after it."""
    lines = read_lines(path)
    header: list[str] | None = None
    for line in lines:
        if not line.text.strip() or (header is None and line.text.startswith("#TYPE")):
            continue
        header = next(csv.reader([line.text]))
        break
    if header is None:
        return
    yield header, _records(lines, len(header))


def _records(lines: Iterator[Line], width: int) -> Iterator[CsvRecord]:
    pending: list[Line] = []
    quotes = 0
    for line in lines:
        if not pending and not line.text.strip():
            continue  # blank lines between records carry nothing
        pending.append(line)
        quotes += line.text.count('"')
        if quotes % 2 and len(pending) < MAX_RECORD_LINES:
            continue
        yield _record(pending, width, unterminated=bool(quotes % 2))
        pending, quotes = [], 0
    if pending:
        yield _record(pending, width, unterminated=True)


def _record(lines: list[Line], width: int, *, unterminated: bool) -> CsvRecord:
    raw = "\n".join(line.text for line in lines)
    first = lines[0]
    if not all(line.valid for line in lines):
        return CsvRecord(
            first.offset, first.number, None, raw, "record is not valid text in the file's encoding"
        )
    if unterminated:
        return CsvRecord(
            first.offset, first.number, None, raw, "quoted value never closed (unbalanced quotes)"
        )
    try:
        fields = next(csv.reader([raw], strict=True))
    except (csv.Error, StopIteration) as exc:
        return CsvRecord(first.offset, first.number, None, raw, f"not a CSV record: {exc}")
    if len(fields) != width:
        return CsvRecord(
            first.offset,
            first.number,
            None,
            raw,
            f"expected {width} fields as in the header, found {len(fields)}",
        )
    return CsvRecord(first.offset, first.number, fields, raw)

"""Event Viewer "Save As" CSV and tab-separated TXT exports of Windows events.

Both start with ``Level,Date and Time,Source,Event ID,Task Category`` (``Keywords`` first for the
Security log) and carry the rendered message as an unnamed sixth field that spans several lines
inside quotes. Dates are the exporting machine's local time in its culture's format, so the time
zone comes from ``ParseOptions.timezone`` and is recorded in ``time_assumed_tz``.

Records are cut by quote balance, and a line that looks like the start of a record ends an
unbalanced one: a broken quote costs one reject, not the rest of the file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from parsers.base import FileBatch
from parsers.events_rows import Batcher
from parsers.events_schema import EventsParser, clean_message, clip
from parsers.text import Line, read_lines, sniff_text

#: Lines after which an unclosed quote is given up on (a damaged file, not a long message).
MAX_RECORD_LINES = 5_000

_HEADER = re.compile(
    r'^\ufeff?"?(Level|Keywords)"?([,\t])"?Date and Time"?\2"?Source"?\2"?Event ID"?\2"?Task Category"?'
)
# a line that begins a record: a level word, then a date and a time
_RECORD_START = re.compile(r'^"?[^,\t"]{1,40}"?[,\t]"?\d{1,4}[./-]\d{1,2}[./-]\d{1,4},?[ T]\d{1,2}[:.]\d{2}')
_DATE = re.compile(
    r"""\s*(?:(?P<y1>\d{4})[-/.](?P<m1>\d{1,2})[-/.](?P<d1>\d{1,2})
        |(?P<a>\d{1,2})(?P<sep>[/.-])(?P<b>\d{1,2})(?P=sep)(?P<y2>\d{4}))\.?
        [ T,]+(?P<H>\d{1,2})[:.](?P<M>\d{2})(?:[:.](?P<S>\d{2})(?:[.,](?P<f>\d{1,7}))?)?
        \s*(?P<ampm>[AaPp]\.?\s?[Mm]\.?)?\s*(?P<z>Z|[+-]\d{2}:?\d{2})?\s*""",
    re.X,
)


def parse_local_time(text: str, zone: ZoneInfo) -> tuple[dt.datetime, bool] | None:
    """A culture-formatted date and time -> (UTC, whether ``zone`` was assumed); None if unknown.

    ``7/19/2016 2:13:14 PM`` (12-hour clock) is month first; a slashed date on a 24-hour clock
    (en-GB, fr-FR) is day first, as are dotted (de-DE) and dashed (nl-NL) ones; year-first dates
    are ISO or ja-JP. A day that cannot be a month wins over these guesses.
    """
    m = _DATE.fullmatch(text)
    if m is None:
        return None
    g = m.groupdict()
    if g["y1"]:
        year, month, day = int(g["y1"]), int(g["m1"]), int(g["d1"])
    else:
        a, b, year = int(g["a"]), int(g["b"]), int(g["y2"])
        month, day = (a, b) if g["sep"] == "/" and g["ampm"] else (b, a)
        if month > 12 >= day:
            month, day = day, month
    hour = int(g["H"])
    if g["ampm"]:
        if hour > 12:
            return None
        hour = hour % 12 + (12 if g["ampm"][0] in "Pp" else 0)
    micro = int((g["f"] or "").ljust(6, "0")[:6])
    try:
        value = dt.datetime(year, month, day, hour, int(g["M"]), int(g["S"] or 0), micro)
    except ValueError:
        return None
    if g["z"]:
        offset = dt.UTC if g["z"] == "Z" else dt.datetime.strptime(g["z"].replace(":", ""), "%z").tzinfo
        return value.replace(tzinfo=offset).astimezone(dt.UTC), False
    return value.replace(tzinfo=zone).astimezone(dt.UTC), True


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError) as exc:
        raise ValueError(
            f"unknown time zone {name!r} for local-time event exports: use an IANA name"
        ) from exc


@dataclass
class Record:
    """One record's lines, joined, with where it starts."""

    text: str
    offset: int
    line: int
    problem: str | None = None


def record_batches(
    out: Batcher,
    parser: str,
    source: str,
    found: Iterable[Record],
    values_of: Callable[[Record], tuple[dict[str, Any] | None, str | None]],
    size: int,
) -> Iterator[FileBatch]:
    """Each record as an events row, or a reject with its reason, in bounded batches."""
    for record in found:
        out.position = record.offset + 1
        values, problem = values_of(record)
        if values is None:
            out.reject(parser, source, record.offset, record.line, problem or "not a record", record.text)
        else:
            out.row(values, source, record.offset, record.line)
        if out.full():
            yield out.take()
    yield from out.last(size)


def records(lines: Iterator[Line], *, starts: re.Pattern[str] | None) -> Iterator[Record]:
    """Group lines into records by quote balance; ``starts`` marks lines that must begin one."""
    current: list[Line] = []
    quotes = 0
    problem: str | None = None

    def emit() -> Record:
        first = current[0]
        return Record("\n".join(x.text for x in current), first.offset, first.number, problem)

    for line in lines:
        if current and quotes % 2 == 1 and starts is not None and starts.match(line.text):
            problem = "a quoted field is not closed before the next record"
            yield emit()
            current, quotes, problem = [], 0, None
        if not current and not line.text.strip():
            continue
        current.append(line)
        quotes += line.text.count('"')
        if not line.valid:
            problem = problem or "bytes that are not valid in the file's encoding"
        if quotes % 2 == 0:
            yield emit()
            current, quotes, problem = [], 0, None
        elif len(current) >= MAX_RECORD_LINES:
            problem = f"a quoted field is still open after {MAX_RECORD_LINES} lines"
            yield emit()
            current, quotes, problem = [], 0, None
    if current:
        problem = problem or "the file ends inside a quoted field"
        yield emit()


class FieldsError(ValueError):
    """A record the csv module cannot split (a stray carriage return, say)."""


def split_fields(text: str, delimiter: str) -> list[str]:
    """The fields of one record; its line ends are ``\\n`` (as ``records`` joins them)."""
    try:
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    except csv.Error as exc:
        raise FieldsError(f"malformed {'TXT' if delimiter == chr(9) else 'CSV'} record: {exc}") from None


class EventViewerParser(EventsParser):
    """Event Viewer's text exports; subclasses fix the separator."""

    name: ClassVar[str] = "winevent_csv"
    delimiter: ClassVar[str] = ","
    format: ClassVar[str] = "csv"

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        text = sniff_text(head)
        m = _HEADER.match(text or "")
        return 95 if m is not None and m.group(2) == cls.delimiter else 0

    def parse_file(self, path: Path, *, source: str, batch_records: int = 50_000) -> Iterator[FileBatch]:
        zone = zone_of(self.options.timezone)
        out = Batcher(batch_records)
        lines = read_lines(path)
        first_column = "Level"
        for line in lines:
            m = _HEADER.match(line.text)
            if m is not None:
                first_column = m.group(1)
                out.position = line.offset + 1
                break
            if line.text.strip():
                out.reject(self.name, source, line.offset, line.number, "no export header", line.text)
        yield from record_batches(
            out,
            self.name,
            source,
            records(lines, starts=_RECORD_START),
            lambda record: self._values(record, first_column, zone),
            path.stat().st_size,
        )

    def _values(
        self, record: Record, first_column: str, zone: ZoneInfo
    ) -> tuple[dict[str, Any] | None, str | None]:
        if record.problem is not None:
            return None, record.problem
        try:
            fields = split_fields(record.text, self.delimiter)
        except FieldsError as exc:
            return None, str(exc)
        if len(fields) < 5:
            return None, f"expected at least 5 {self.format.upper()} fields, found {len(fields)}"
        level, when, provider, event_id, task = (f.strip() for f in fields[:5])
        message = self.delimiter.join(fields[5:]) if len(fields) > 5 else None
        parsed = parse_local_time(when, zone)
        if parsed is None:
            return None, f"date and time {when!r} is not in a known format"
        if not event_id.isdigit():
            return None, f"event id {event_id!r} is not a number"
        time_created, assumed = parsed
        return {
            "time_created": time_created,
            "provider": provider or None,
            "event_id": int(event_id),
            "level_name": (level or None) if first_column == "Level" else None,
            "keyword_names": (level or None) if first_column == "Keywords" else None,
            "task_name": task or None,
            "message": clean_message(message),
            "format": self.format,
            "time_assumed_tz": self.options.timezone if assumed else None,
            "raw": clip(record.text),
        }, None


class EventViewerCsvParser(EventViewerParser):
    """Event Viewer "Save As" CSV (comma-separated)."""

    name: ClassVar[str] = "winevent_csv"
    delimiter: ClassVar[str] = ","
    format: ClassVar[str] = "csv"


class EventViewerTxtParser(EventViewerParser):
    """Event Viewer "Save As" text (tab-separated)."""

    name: ClassVar[str] = "winevent_txt"
    delimiter: ClassVar[str] = "\t"
    format: ClassVar[str] = "txt"

"""``Get-WinEvent ... | Export-Csv``: PowerShell's CSV of ``EventLogRecord`` objects.

Windows PowerShell writes a ``#TYPE System.Diagnostics.Eventing.Reader.EventLogRecord`` line
first (PowerShell 7 only with ``-IncludeTypeInformation``), then a quoted header of the object's
properties: ``"Message","Id","Version","Qualifiers","Level","Task","Opcode","Keywords",
"RecordId","ProviderName",...,"TimeCreated",...``. Columns are taken by name, so ``Select-Object``
subsets and ``-Delimiter ';'`` exports read too. ``TimeCreated`` is local time in the exporting
culture's format; ``Keywords`` is the signed 64-bit mask in decimal.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from parsers.base import FileBatch
from parsers.events_rows import Batcher
from parsers.events_schema import EventsParser, clean_message, clip
from parsers.text import read_lines, sniff_text
from parsers.winevent_csv import FieldsError, parse_local_time, record_batches, records, split_fields, zone_of

TYPE_LINE = "#TYPE System.Diagnostics.Eventing.Reader.EventLogRecord"
_HEADER = re.compile(r'^\ufeff?"Message"([,;\t|])"Id"\1')

_INTS = {
    "Id": "event_id",
    "Version": "version",
    "Qualifiers": "qualifiers",
    "Level": "level",
    "Task": "task",
    "Opcode": "opcode",
}
_BIGINTS = {"RecordId": "record_id", "ProcessId": "process_id", "ThreadId": "thread_id"}
_TEXTS = {
    "ProviderName": "provider",
    "LogName": "channel",
    "MachineName": "computer",
    "UserId": "user_sid",
    "LevelDisplayName": "level_name",
    "TaskDisplayName": "task_name",
    "OpcodeDisplayName": "opcode_name",
    "KeywordsDisplayNames": "keyword_names",
}


def _int(text: str) -> int | None:
    text = text.strip()
    if not re.fullmatch(r"-?\d+", text):
        return None
    return int(text)


def keywords_hex(text: str) -> str | None:
    """PowerShell's signed decimal keyword mask -> the ``0x...`` form of the event XML."""
    value = _int(text)
    return None if value is None else hex(value & 0xFFFFFFFFFFFFFFFF)


class PowerShellCsvParser(EventsParser):
    """``Get-WinEvent | Export-Csv`` (``EventLogRecord`` objects as CSV)."""

    name: ClassVar[str] = "winevent_pscsv"

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        text = (sniff_text(head) or "").lstrip("\ufeff")
        first = text.partition("\n")[0]
        if first.strip() == TYPE_LINE:
            return 98
        m = _HEADER.match(first)
        if m is not None and '"ProviderName"' in first and '"TimeCreated"' in first:
            return 90
        return 0

    def parse_file(self, path: Path, *, source: str, batch_records: int = 50_000) -> Iterator[FileBatch]:
        zone = zone_of(self.options.timezone)
        out = Batcher(batch_records)
        lines = read_lines(path)
        columns: list[str] = []
        delimiter = ","
        for line in lines:
            text = line.text.lstrip("\ufeff")
            m = _HEADER.match(text)
            if m is not None:
                try:
                    columns = split_fields(text, m.group(1))
                except FieldsError as exc:
                    out.reject(self.name, source, line.offset, line.number, str(exc), text)
                    continue
                delimiter = m.group(1)
                out.position = line.offset + 1
                break
            if text.strip() and not text.startswith("#TYPE"):
                out.reject(self.name, source, line.offset, line.number, "no CSV header", text)
        yield from record_batches(
            out,
            self.name,
            source,
            records(lines, starts=None),
            lambda record: self._values(record.text, record.problem, columns, delimiter, zone),
            path.stat().st_size,
        )

    def _values(
        self, text: str, problem: str | None, columns: list[str], delimiter: str, zone: ZoneInfo
    ) -> tuple[dict[str, Any] | None, str | None]:
        if problem is not None:
            return None, problem
        try:
            fields = split_fields(text, delimiter)
        except FieldsError as exc:
            return None, str(exc)
        if len(fields) != len(columns):
            return None, f"expected {len(columns)} fields as in the header, found {len(fields)}"
        row = dict(zip(columns, fields, strict=True))
        values: dict[str, Any] = {"format": "pscsv", "raw": clip(text)}
        for column, target in _INTS.items():
            values[target] = _int(row.get(column, ""))
        for column, target in _BIGINTS.items():
            values[target] = _int(row.get(column, ""))
        for column, target in _TEXTS.items():
            value = row.get(column, "").strip()
            # collections are written as their type name, which says nothing
            values[target] = value if value and not value.startswith("System.") else None
        values["keywords"] = keywords_hex(row.get("Keywords", ""))
        values["message"] = clean_message(row.get("Message"))
        when = row.get("TimeCreated", "").strip()
        parsed = parse_local_time(when, zone) if when else None
        if parsed is None:
            return None, f"TimeCreated {when!r} is not in a known format"
        values["time_created"], assumed = parsed
        values["time_assumed_tz"] = self.options.timezone if assumed else None
        if values["event_id"] is None:
            return None, f"Id {row.get('Id', '')!r} is not a number"
        return values, None

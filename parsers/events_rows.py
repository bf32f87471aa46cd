"""Rows of the ``events`` table: the derived columns, one implementation for every format, and
Arrow batches built column by column.

``EventColumns.add`` takes the base columns a parser could read and computes what rules search:
the normalised error ``code``, Schannel's ``alert_code``, the CredSSP ``target``,
``event_data_json``, and the level number or name the export left out. Every format going through
the same code is what makes the same event exported three ways the same row.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from parsers.base import TIMESTAMP, FileBatch, ParseResult, Reject, rejects_table
from parsers.events_schema import (
    CODE_FIELDS,
    EVENT_DATA,
    EVENTS_SCHEMA,
    EVENTS_TABLE,
    HEX_CODE_FIELDS,
    TARGET_FIELDS,
    clip,
    level_name,
    level_number,
    normalise_code,
    parse_system_time,
)

# --- the derived columns (one implementation for every format) --------------------------------

_HEX_DIGITS = re.compile(r"[0-9A-Fa-f]{1,8}")
_CODE_KEYS = frozenset(CODE_FIELDS + HEX_CODE_FIELDS)
_RAS_CODE = re.compile(r"error code returned on failure is (-?[0-9]+|0x[0-9a-f]+)", re.IGNORECASE)
_MESSAGE_CODE = re.compile(r"(?:^|[^0-9A-Za-z_-])(0[xX][0-9A-Fa-f]{8}|-[0-9]{9,10})\b", re.ASCII)
_ALERT = re.compile(r"fatal (?:alert|error) code is ([0-9]+)")
_CREDSSP_TARGET = re.compile(r"CredSSP authentication to (\S+) failed")


def derive_code(
    provider: str | None, event_id: int | None, data: Mapping[str, str] | None, message: str | None
) -> str | None:
    """The event's error code: a named error field first (``ErrorCode``, ``Status``...; zero means
    success and is passed over), CAPI2's hex result, RasClient 20227's fourth value, then any
    value or message text that is unmistakably an HRESULT/NTSTATUS."""
    if data:
        if not _CODE_KEYS.isdisjoint(data):
            for key in CODE_FIELDS:
                if key in data and (code := normalise_code(data[key])):
                    return code
            for key in HEX_CODE_FIELDS:
                value = data.get(key, "").strip(" ")
                if _HEX_DIGITS.fullmatch(value) and (code := normalise_code("0x" + value)):
                    return code
        if provider == "RasClient" and event_id == 20227 and (code := normalise_code(data.get("4"))):
            return code
        for value in data.values():
            # the strict forms are 10 or 11 characters: 0x and 8 digits, or a minus and 9-10 digits
            if (
                10 <= len(value) <= 13
                and value.lstrip(" ")[:1] in ("-", "0")
                and (code := normalise_code(value, strict=True))
            ):
                return code
    if message:
        m = _RAS_CODE.search(message)
        if m and (code := normalise_code(m.group(1))):
            return code
        for m in _MESSAGE_CODE.finditer(message):
            if code := normalise_code(m.group(1), strict=True):
                return code
    return None


def derive_alert(data: Mapping[str, str] | None, message: str | None) -> int | None:
    """Schannel's TLS alert (36887 received, 36888 sent): ``AlertDesc``, or the message's number."""
    value = (data or {}).get("AlertDesc", "").strip()
    if value.isdigit():
        return int(value)
    m = _ALERT.search(message) if message else None
    return int(m.group(1)) if m else None


def derive_target(
    provider: str | None, event_id: int | None, data: Mapping[str, str] | None, message: str | None
) -> str | None:
    """The remote side of a failed authentication (CredSSP/LsaSrv 6041: ``TERMSRV/host``)."""
    if data:
        for key in TARGET_FIELDS:
            value = data.get(key, "").strip(" ") if key in data else ""
            if value not in ("", "-"):
                return value
        if provider == "LsaSrv" and event_id == 6041 and (value := (data.get("1") or "").strip(" ")):
            return value
    m = _CREDSSP_TARGET.search(message) if message else None
    return m.group(1) if m else None


def _json(data: Mapping[str, str]) -> str:
    return orjson.dumps(data).decode()


# --- building a batch of rows ----------------------------------------------------------------

_SCALARS = [f for f in EVENTS_SCHEMA if f.name not in ("time_created", "event_data")]


class EventColumns:
    """Column lists of a batch of events, filled one event at a time; ``add`` computes the derived
    columns and ``table`` builds Arrow arrays (event data as flat key/value arrays, times given as
    ``SystemTime`` text parsed in one vectorised cast)."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {f.name: [] for f in _SCALARS}
        self._appenders = [(name, column.append) for name, column in self.columns.items()]
        self.times: list[dt.datetime | None] = []
        self.time_texts: list[str | None] = []
        self.keys: list[str] = []
        self.values: list[str] = []
        self.offsets: list[int] = [0]
        self.no_data: list[bool] = []

    def __len__(self) -> int:
        return len(self.times)

    def add(self, values: dict[str, Any]) -> None:
        """One event: base columns by name (``time_created`` a datetime, or ``time_text`` an ISO
        ``SystemTime``; ``event_data`` a dict); missing names are null."""
        data: dict[str, str] | None = values.get("event_data")
        provider, event_id, message = values.get("provider"), values.get("event_id"), values.get("message")
        level, name = values.get("level"), values.get("level_name")
        values["level"] = level if level is not None else level_number(name)
        values["level_name"] = name if name is not None else level_name(level)
        values["code"] = derive_code(provider, event_id, data, message)
        values["alert_code"] = derive_alert(data, message)
        values["target"] = derive_target(provider, event_id, data, message)
        values["event_data_json"] = _json(data) if data is not None else None
        get = values.get
        for key, append in self._appenders:
            append(get(key))
        self.times.append(get("time_created"))
        self.time_texts.append(get("time_text"))
        if data is None:
            self.no_data.append(True)
        else:
            self.no_data.append(False)
            self.keys.extend(data)
            self.values.extend(data.values())
        self.offsets.append(len(self.keys))

    def table(self) -> pa.Table:
        arrays: dict[str, pa.Array] = {f.name: pa.array(self.columns[f.name], f.type) for f in _SCALARS}
        arrays["time_created"] = self._times()
        arrays["event_data"] = pa.MapArray.from_arrays(
            pa.array(self.offsets, pa.int32()),
            pa.array(self.keys, pa.string()),
            pa.array(self.values, pa.string()),
            type=EVENT_DATA,
            mask=pa.array(self.no_data, pa.bool_()),
        )
        return pa.Table.from_arrays([arrays[f.name] for f in EVENTS_SCHEMA], schema=EVENTS_SCHEMA)

    def _times(self) -> pa.Array:
        given = pa.array(self.times, TIMESTAMP)
        if not any(t is not None for t in self.time_texts):
            return given
        texts = pa.array(self.time_texts, pa.string())
        try:
            parsed = texts.cast(pa.timestamp("ns", tz="UTC")).cast(TIMESTAMP, safe=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # odd text or a year outside 1677-2262
            parsed = pa.array([parse_system_time(t) for t in self.time_texts], TIMESTAMP)
        return pc.if_else(pc.is_null(given), parsed, given)


class Batcher:
    """Rows and rejects of one file, handed out in bounded batches with growing positions."""

    def __init__(self, batch_records: int) -> None:
        self.limit = batch_records
        self.rows = EventColumns()
        self.rejects: list[Reject] = []
        self.position = 0
        self.handed = 0  # position of the last batch handed out

    def row(self, values: dict[str, Any], source: str, offset: int, line: int | None) -> None:
        values.update(source_file=source, source_offset=offset, line_number=line)
        self.rows.add(values)

    def reject(self, parser: str, source: str, offset: int, line: int | None, reason: str, text: str) -> None:
        self.rejects.append(Reject(source, offset, line, parser, reason, clip(text, 4096)))

    def full(self) -> bool:
        return len(self.rows) + len(self.rejects) >= self.limit

    def take(self, position: int | None = None) -> FileBatch:
        result = ParseResult(records_read=len(self.rows) + len(self.rejects))
        if len(self.rows):
            result.add(EVENTS_TABLE, self.rows.table())
        if self.rejects:
            result.rejects = rejects_table(self.rejects)
        self.rows, self.rejects = EventColumns(), []
        self.handed = max(position or 0, self.position, 1)
        return FileBatch(result, self.handed)

    def last(self, size: int) -> Iterator[FileBatch]:
        """The final batch (up to the file's size), unless it would add nothing to the previous."""
        if len(self.rows) or self.rejects or max(size, self.position, 1) > self.handed:
            yield self.take(size)

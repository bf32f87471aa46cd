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
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
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


# --- the derived columns of a whole batch ----------------------------------------------------

#: Loose forms of what each derivation looks for: a row none of them matches derives nothing, so
#: the exact (Python) derivation runs only on the rows that match one.
_MESSAGE_CODE_HINT = r"(?i)error code returned on failure is|0x[0-9a-f]{8}|-[0-9]{9}"
_STRICT_VALUE_HINT = r"^ *[-0]"


def _flag(mask: pa.Array) -> np.ndarray:
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def _rows_with(parents: np.ndarray, entries: pa.Array, n: int) -> np.ndarray:
    """Row mask: rows having at least one event data entry where ``entries`` is true."""
    mask = np.zeros(n, dtype=bool)
    mask[parents[_flag(entries)]] = True
    return mask


def _matches(column: pa.Array, pattern: str) -> np.ndarray:
    return _flag(pc.match_substring_regex(column, pattern))


def _strict_like(items: pa.Array) -> pa.Array:
    """Entries that could be a code in its strict form: 10 to 13 characters starting, after
    spaces, with ``-`` or ``0``."""
    lengths = pc.utf8_length(items)
    sized = np.flatnonzero(_flag(pc.and_(pc.greater_equal(lengths, 10), pc.less_equal(lengths, 13))))
    mask = np.zeros(len(items), dtype=bool)
    if len(sized):
        mask[sized] = _matches(items.take(sized), _STRICT_VALUE_HINT)
    return pa.array(mask)


def _each(column: pa.Array, fn: Callable[[Any], Any], type: pa.DataType) -> pa.Array:
    """``fn`` applied once per distinct value of ``column``."""
    distinct = pc.unique(column)
    mapped = pa.array([fn(v) for v in distinct.to_pylist()], type)
    return pc.take(mapped, pc.index_in(column, value_set=distinct))


def derived_columns(base: dict[str, pa.Array], data: pa.MapArray) -> dict[str, pa.Array]:
    """The derived columns of a batch: ``level``/``level_name`` filled from each other, ``code``,
    ``alert_code`` and ``target``, each computed by the one-row functions
    above on only the rows whose values could give one."""
    n = len(data)
    level, name = base["level"], base["level_name"]
    out = {
        "level": pc.coalesce(level, _each(name, level_number, pa.int32())),
        "level_name": pc.coalesce(name, _each(level, level_name, pa.string())),
    }
    offsets = data.offsets.to_numpy()
    parents = np.repeat(np.arange(n), np.diff(offsets))
    keys, items = data.keys, data.items
    provider, event_id, message = base["provider"], base["event_id"], base["message"]
    null = _flag(pc.is_null(data))
    has_data = np.diff(offsets) > 0

    def provider_event(name: str, number: int) -> np.ndarray:
        return has_data & _flag(pc.and_(pc.equal(provider, name), pc.equal(event_id, number)))

    is_code = _rows_with(parents, pc.is_in(keys, pa.array(sorted(_CODE_KEYS))), n)
    is_code |= _rows_with(parents, _strict_like(items), n)
    is_code |= provider_event("RasClient", 20227)
    is_code |= _matches(message, _MESSAGE_CODE_HINT)
    is_alert = _rows_with(parents, pc.equal(keys, "AlertDesc"), n) | _matches(message, "fatal ")
    is_target = _rows_with(parents, pc.is_in(keys, pa.array(TARGET_FIELDS)), n)
    is_target |= provider_event("LsaSrv", 6041)
    is_target |= _matches(message, "CredSSP authentication to")

    cache: dict[int, dict[str, str]] = {}

    def row_data(i: int) -> dict[str, str]:
        if i not in cache:
            a, b = int(offsets[i]), int(offsets[i + 1])
            cache[i] = dict(
                zip(keys.slice(a, b - a).to_pylist(), items.slice(a, b - a).to_pylist(), strict=True)
            )
        return cache[i]

    def one(mask: np.ndarray, fn: Callable[[int], Any], type: pa.DataType) -> pa.Array:
        if not mask.any():
            return pa.nulls(n, type)
        values: list[Any] = [None] * n
        for i in np.flatnonzero(mask).tolist():
            values[i] = fn(i)
        return pa.array(values, type)

    def data_of(i: int) -> dict[str, str] | None:
        return None if null[i] else row_data(i)

    some = is_code | is_alert | is_target
    p, e, m = (c.to_pylist() if some.any() else [None] * n for c in (provider, event_id, message))
    out["code"] = one(is_code, lambda i: derive_code(p[i], e[i], data_of(i), m[i]), pa.string())
    out["alert_code"] = one(is_alert, lambda i: derive_alert(data_of(i), m[i]), pa.int32())
    out["target"] = one(is_target, lambda i: derive_target(p[i], e[i], data_of(i), m[i]), pa.string())
    return out


# --- building a batch of rows ----------------------------------------------------------------

_DERIVED = ("code", "alert_code", "target")
#: The columns a batch is built from: all but the derived ones (``time_created`` typed,
#: ``event_data_json`` as ``orjson`` writes ``event_data``).
BASE_SCHEMA = pa.schema([f for f in EVENTS_SCHEMA if f.name not in _DERIVED])
#: The columns ``EventColumns`` fills from lists as they are.
_LISTED = [f for f in BASE_SCHEMA if f.name not in ("time_created", "event_data", "event_data_json")]


def base_table(columns: dict[str, pa.Array]) -> pa.Table:
    return pa.Table.from_arrays([columns[f.name] for f in BASE_SCHEMA], schema=BASE_SCHEMA)


_DERIVED_FROM = ("level", "level_name", "provider", "event_id", "message", "event_data")


def events_table(base: pa.Table) -> pa.Table:
    """The ``events`` table of a batch from its base columns (see ``BASE_SCHEMA``)."""
    inputs = {name: base.column(name).combine_chunks() for name in _DERIVED_FROM}
    columns = {name: base.column(name) for name in base.column_names}
    columns |= derived_columns(inputs, inputs["event_data"])
    return pa.Table.from_arrays([columns[f.name] for f in EVENTS_SCHEMA], schema=EVENTS_SCHEMA)


class EventColumns:
    """Column lists of a batch of events, filled one event at a time; ``table`` builds Arrow
    arrays (event data as flat key/value arrays, times given as ``SystemTime`` text parsed in one
    vectorised cast) and computes the derived columns over the whole batch."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {f.name: [] for f in _LISTED}
        self._appenders = [(name, column.append) for name, column in self.columns.items()]
        self.times: list[dt.datetime | None] = []
        self.time_texts: list[str | None] = []
        self.keys: list[str] = []
        self.values: list[str] = []
        self.offsets: list[int] = [0]
        self.no_data: list[bool] = []
        self.json: list[bytes | None] = []

    def __len__(self) -> int:
        return len(self.times)

    def add(self, values: dict[str, Any]) -> None:
        """One event: base columns by name (``time_created`` a datetime, or ``time_text`` an ISO
        ``SystemTime``; ``event_data`` a dict); missing names are null."""
        data: dict[str, str] | None = values.get("event_data")
        get = values.get
        for key, append in self._appenders:
            append(get(key))
        self.times.append(get("time_created"))
        self.time_texts.append(get("time_text"))
        if data is None:
            self.no_data.append(True)
            self.json.append(None)
        else:
            self.no_data.append(False)
            self.json.append(orjson.dumps(data))
            self.keys.extend(data)
            self.values.extend(data.values())
        self.offsets.append(len(self.keys))

    def base(self) -> pa.Table:
        """The rows as a table of ``BASE_SCHEMA``."""
        base: dict[str, pa.Array] = {f.name: pa.array(self.columns[f.name], f.type) for f in _LISTED}
        base["time_created"] = times(pa.array(self.times, TIMESTAMP), self.time_texts)
        base["event_data_json"] = pa.array(self.json, pa.binary()).cast(pa.string())
        base["event_data"] = pa.MapArray.from_arrays(
            pa.array(self.offsets, pa.int32()),
            pa.array(self.keys, pa.string()),
            pa.array(self.values, pa.string()),
            type=EVENT_DATA,
            mask=pa.array(self.no_data, pa.bool_()),
        )
        return base_table(base)

    def table(self) -> pa.Table:
        return events_table(self.base())


def times(given: pa.Array, texts: list[str | None] | pa.Array) -> pa.Array:
    """``time_created``: the given times, else the ``SystemTime`` texts (one vectorised cast)."""
    if isinstance(texts, list):
        if not any(t is not None for t in texts):
            return given
        texts = pa.array(texts, pa.string())
    try:
        parsed = texts.cast(pa.timestamp("ns", tz="UTC")).cast(TIMESTAMP, safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # odd text or a year outside 1677-2262
        parsed = pa.array([parse_system_time(t) for t in texts.to_pylist()], TIMESTAMP)
    return pc.if_else(pc.is_null(given), parsed, given)


def _ascending(column: pa.ChunkedArray) -> bool:
    offsets = column.to_numpy()
    return bool((offsets[1:] > offsets[:-1]).all())


class Batcher:
    """Rows and rejects of one file, handed out in bounded batches with growing positions. Rows
    come one at a time (``row``) or as a table built at once (``rows_table``)."""

    def __init__(self, batch_records: int) -> None:
        self.limit = batch_records
        self.rows = EventColumns()
        self.tables: list[pa.Table] = []
        self.rejects: list[Reject] = []
        self.position = 0
        self.handed = 0  # position of the last batch handed out

    def __len__(self) -> int:
        """Rows and rejects held."""
        return len(self.rows) + sum(t.num_rows for t in self.tables) + len(self.rejects)

    def row(self, values: dict[str, Any], source: str, offset: int, line: int | None) -> None:
        values.update(source_file=source, source_offset=offset, line_number=line)
        self.rows.add(values)

    def reject(self, parser: str, source: str, offset: int, line: int | None, reason: str, text: str) -> None:
        self.rejects.append(Reject(source, offset, line, parser, reason, clip(text, 4096)))

    def rows_table(self, table: pa.Table) -> None:
        """Rows built elsewhere, as a table of ``BASE_SCHEMA`` (``source_offset`` set)."""
        if table.num_rows:
            self.tables.append(table)

    def full(self) -> bool:
        return len(self) >= self.limit

    def take(self, position: int | None = None) -> FileBatch:
        result = ParseResult(records_read=len(self))
        tables = [*self.tables, self.rows.base()] if len(self.rows) else self.tables
        if tables:
            rows = pa.concat_tables(tables)
            if not _ascending(rows["source_offset"]):  # rows built one at a time go to their place
                rows = rows.take(pc.sort_indices(rows["source_offset"]))
            result.add(EVENTS_TABLE, events_table(rows))
        if self.rejects:
            result.rejects = rejects_table(self.rejects)
        self.rows, self.tables, self.rejects = EventColumns(), [], []
        self.handed = max(position or 0, self.position, 1)
        return FileBatch(result, self.handed)

    def last(self, size: int) -> Iterator[FileBatch]:
        """The final batch (up to the file's size), unless it would add nothing to the previous."""
        if len(self) or max(size, self.position, 1) > self.handed:
            yield self.take(size)

"""The ``evtx`` package's records (JSON text) as ``events`` base columns, a batch at a time.

``system_values`` and ``flatten_json_event`` (events_schema) read one record's JSON, parsed by
``orjson``, into columns: they are the reference, and what every record of an odd shape goes
through. Most records have one regular shape, which ``read_batch`` reads much faster: ``msgspec``
decodes straight into typed structs of only the values needed (the rest of the text is skipped,
not built into dicts), and the columns are made a whole batch at a time, with the checks for the
rare forms (a string where a number is usual, an empty text) done once per column. A record the
structs do not fit, or without an event id or time (a reject, which the reference words), is
handed back by index. ``tests/parsers/test_evtx_json.py`` holds both readings equal.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import msgspec
import numpy as np
import orjson
import pyarrow as pa

from parsers.base import TIMESTAMP
from parsers.events_rows import BASE_SCHEMA, base_table, times
from parsers.events_schema import (
    EVENT_DATA,
    EVENTS_SCHEMA,
    RAW_LIMIT,
    clip,
    event_data_text,
    flatten_json_event,
)

# --- the reference: one record's parsed JSON ---------------------------------------------------


def _attrs(node: Any) -> dict[str, Any]:
    attrs = node.get("#attributes") if isinstance(node, dict) else None
    return attrs if isinstance(attrs, dict) else {}


def _int(value: Any, bits: int = 64) -> int | None:
    """A whole number that fits its (signed) column, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        try:
            value = int(value)
        except ValueError:  # digits int() does not read ("²"), or "--1"
            return None
    if isinstance(value, int) and -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        return value
    return None


def _str(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if value is None or isinstance(value, (dict, list)):
        return None
    return event_data_text(value)


def system_values(event: dict[str, Any]) -> dict[str, Any]:
    """The ``System`` part of a record in the package's JSON, as base ``events`` columns."""
    system = event.get("System") or {}
    provider = _attrs(system.get("Provider"))
    event_id = system.get("EventID")
    if isinstance(event_id, dict):
        qualifiers, event_id = _int(_attrs(event_id).get("Qualifiers"), 32), event_id.get("#text")
    else:
        qualifiers = None
    execution = _attrs(system.get("Execution"))
    return {
        "time_text": _str(_attrs(system.get("TimeCreated")).get("SystemTime")),
        "computer": _str(system.get("Computer")),
        "channel": _str(system.get("Channel")),
        "provider": _str(provider.get("Name")) or _str(provider.get("EventSourceName")),
        "event_id": _int(event_id, 32),
        "qualifiers": qualifiers,
        "version": _int(system.get("Version"), 32),
        "level": _int(system.get("Level"), 32),
        "task": _int(system.get("Task"), 32),
        "opcode": _int(system.get("Opcode"), 32),
        "keywords": _str(system.get("Keywords")),
        "record_id": _int(system.get("EventRecordID")),
        "process_id": _int(execution.get("ProcessID")),
        "thread_id": _int(execution.get("ThreadID")),
        "user_sid": _str(_attrs(system.get("Security")).get("UserID")),
    }


# --- the regular shape, decoded by msgspec --------------------------------------------------
# Values are ``Any`` (decoded as orjson would) and converted as above; an element that is not an
# object where one is expected fails the decoding, and the record goes the reference way.


class _S(msgspec.Struct, gc=False):
    pass


class _ProviderAttrs(_S):
    Name: Any = None
    EventSourceName: Any = None


class _Provider(_S):
    attrs: _ProviderAttrs = msgspec.field(default_factory=_ProviderAttrs, name="#attributes")


class _TimeAttrs(_S):
    SystemTime: Any = None


class _Time(_S):
    attrs: _TimeAttrs = msgspec.field(default_factory=_TimeAttrs, name="#attributes")


class _ExecutionAttrs(_S):
    ProcessID: Any = None
    ThreadID: Any = None


class _Execution(_S):
    attrs: _ExecutionAttrs = msgspec.field(default_factory=_ExecutionAttrs, name="#attributes")


class _SecurityAttrs(_S):
    UserID: Any = None


class _Security(_S):
    attrs: _SecurityAttrs = msgspec.field(default_factory=_SecurityAttrs, name="#attributes")


class _System(_S):
    Provider: _Provider = msgspec.field(default_factory=_Provider)
    EventID: Any = None
    Version: Any = None
    Level: Any = None
    Task: Any = None
    Opcode: Any = None
    Keywords: Any = None
    TimeCreated: _Time = msgspec.field(default_factory=_Time)
    EventRecordID: Any = None
    Execution: _Execution | None = None
    Channel: Any = None
    Computer: Any = None
    Security: _Security | None = None


class _Event(_S):
    System: _System
    EventData: Any = None
    UserData: Any = None


class _Record(_S):
    Event: _Event


_DECODE = msgspec.json.Decoder(_Record).decode
_NONE = type(None)
#: Event data keys with a meaning of their own (see flatten_json_event).
_SPECIAL = frozenset(("#attributes", "Binary", "Data"))
_BLANK = " \t\n\f\r"


def _ints(column: list[Any], bits: int = 64) -> list[Any]:
    """``_int`` of each value, the check done once for a column of numbers in range."""
    kinds = set(map(type, column))
    if kinds <= {int, _NONE}:
        numbers = [v for v in column if v is not None] if _NONE in kinds else column
        if not numbers or (-(2 ** (bits - 1)) <= min(numbers) and max(numbers) < 2 ** (bits - 1)):
            return column
    return [_int(v, bits) for v in column]


def _strs(column: list[Any]) -> list[Any]:
    if set(map(type, column)) <= {str, _NONE}:
        return [v or None for v in column] if "" in column else column
    return [_str(v) for v in column]


def _event_data(event: _Event) -> dict[str, str] | None:
    """``flatten_json_event`` of the event, in one loop for an ``EventData`` of named or unnamed
    plain values (the usual shapes); any other shape goes the reference way."""
    data = event.EventData
    if event.UserData is not None or type(data) is not dict:
        if data is None and event.UserData is None:
            return None
        return flatten_json_event({"EventData": data, "UserData": event.UserData})
    out: dict[str, str] = {}
    position = 0
    for key, value in data.items():
        if key == "#attributes":
            continue
        if key == "Data":
            texts = value.get("#text") if type(value) is dict else value
            for item in texts if type(texts) is list else (texts,):
                position += 1
                name = str(position)
                if name in out or type(item) is dict or type(item) is list:
                    return flatten_json_event({"EventData": data})
                out[name] = (
                    item
                    if type(item) is str and item.strip(_BLANK) and "\r" not in item
                    else event_data_text(item)
                )
            continue
        if key == "Binary":
            if value is None or value == "":
                continue
        else:
            position += 1
        kind = type(value)
        if kind is dict or kind is list or key in out:
            return flatten_json_event({"EventData": data})
        if kind is str and value.strip(_BLANK) and "\r" not in value:
            out[key] = value
        else:
            out[key] = str(value) if kind is int else event_data_text(value)
    return out or None


def read_batch(texts: list[str], first_offset: int, source: str) -> tuple[pa.Table | None, list[int]]:
    """Rows (``BASE_SCHEMA``) of the records of the regular shape, ``source_offset`` being
    ``first_offset`` plus the record's index in ``texts``; and the indices of the others, for
    the reference reading."""
    events: list[_Event] = []
    kept: list[int] = []
    others: list[int] = []
    for i, text in enumerate(texts):
        try:
            events.append(_DECODE(text).Event)
        except msgspec.DecodeError:
            others.append(i)
            continue
        kept.append(i)
    columns = _system_columns([e.System for e in events])
    rows = [
        i
        for i, (t, e) in enumerate(zip(columns["time_text"], columns["event_id"], strict=True))
        if t is not None and e is not None
    ]
    if len(rows) < len(events):  # no event id or time: a reject, worded by the reference reading
        others = sorted({*others, *kept} - {kept[i] for i in rows})
        kept, events = [kept[i] for i in rows], [events[i] for i in rows]
        columns = {name: [values[i] for i in rows] for name, values in columns.items()}
    if not events:
        return None, others
    n = len(events)
    base = {name: pa.array(values, _TYPES[name]) for name, values in columns.items() if name != "time_text"}
    base["time_created"] = times(pa.nulls(n, TIMESTAMP), pa.array(columns["time_text"], pa.string()))
    raw: list[str | None] = [texts[i] for i in kept]
    if max(map(len, texts)) > RAW_LIMIT:
        raw = [clip(t) for t in raw]
    base["raw"] = pa.array(raw, pa.string())
    base["format"] = pa.array(["evtx"] * n, pa.string())
    base["source_file"] = pa.array([source] * n, pa.string())
    base["source_offset"] = pa.array(np.array(kept, dtype=np.int64) + first_offset)
    datas = [_event_data(e) for e in events]
    base["event_data_json"] = pa.array(
        [None if d is None else orjson.dumps(d) for d in datas], pa.binary()
    ).cast(pa.string())
    present = [d for d in datas if d is not None]
    base["event_data"] = pa.MapArray.from_arrays(
        pa.array(
            np.concatenate(([0], np.cumsum([len(d) if d is not None else 0 for d in datas]))), pa.int32()
        ),
        pa.array(list(chain.from_iterable(present)), pa.string()),
        pa.array(list(chain.from_iterable(d.values() for d in present)), pa.string()),
        type=EVENT_DATA,
        mask=pa.array([d is None for d in datas], pa.bool_()),
    )
    for f in BASE_SCHEMA:
        if f.name not in base:
            base[f.name] = pa.nulls(n, f.type)
    return base_table(base), others


_TYPES = {f.name: f.type for f in EVENTS_SCHEMA}
_NO_EXECUTION = _ExecutionAttrs()


def _system_columns(systems: list[_System]) -> dict[str, list[Any]]:
    """``system_values`` of each record, column by column."""
    ids = [s.EventID for s in systems]
    qualifiers: list[Any] = [None] * len(ids)
    if not set(map(type, ids)) <= {int, _NONE}:
        for i, value in enumerate(ids):
            if isinstance(value, dict):
                qualifiers[i], ids[i] = _int(_attrs(value).get("Qualifiers"), 32), value.get("#text")
    names = _strs([s.Provider.attrs.Name for s in systems])
    if None in names:
        names = [n or _str(s.Provider.attrs.EventSourceName) for n, s in zip(names, systems, strict=True)]
    executions = [s.Execution.attrs if s.Execution is not None else _NO_EXECUTION for s in systems]
    return {
        "time_text": _strs([s.TimeCreated.attrs.SystemTime for s in systems]),
        "event_id": _ints(ids, 32),
        "qualifiers": _ints(qualifiers, 32),
        "provider": names,
        "computer": _strs([s.Computer for s in systems]),
        "channel": _strs([s.Channel for s in systems]),
        "version": _ints([s.Version for s in systems], 32),
        "level": _ints([s.Level for s in systems], 32),
        "task": _ints([s.Task for s in systems], 32),
        "opcode": _ints([s.Opcode for s in systems], 32),
        "keywords": _strs([s.Keywords for s in systems]),
        "record_id": _ints([s.EventRecordID for s in systems]),
        "process_id": _ints([x.ProcessID for x in executions]),
        "thread_id": _ints([x.ThreadID for x in executions]),
        "user_sid": _strs([s.Security.attrs.UserID if s.Security is not None else None for s in systems]),
    }

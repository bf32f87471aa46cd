"""Typed columns of the W3C tables: timestamps and integers from text, vectorised.

Casting is done per column with Arrow compute; a value that is not well-formed becomes null (an
integer) or makes its line a reject (the timestamp, without which a row cannot be placed in time).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parsers.base import SOURCE_FIELDS, TIMESTAMP
from parsers.w3c_header import MESSAGE_TRACKING, Layout

DIRECTIVES_TABLE = "directives"

DIRECTIVES_SCHEMA = pa.schema(
    [
        pa.field("directive", pa.string()),
        pa.field("value", pa.string()),
        pa.field("raw", pa.string()),
        *SOURCE_FIELDS,
    ]
)

#: Integer columns of message tracking logs (all others stay text, as the log writes them).
MESSAGE_TRACKING_INTS = ("total_bytes", "recipient_count")

_ISO_US = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})$"
)
_ISO_LONG = (
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6})[0-9]+(Z|[+-][0-9]{2}:[0-9]{2})$"
)
_NULL_STR = pa.scalar(None, pa.string())
TIME_EXAMPLE = "2016-07-19T12:13:14.863Z"

#: A column as the kernels return it: one array, or chunks of one.
Column: TypeAlias = pa.ChunkedArray | pa.Array


@dataclass
class Typed:
    """Typed data columns of some rows, and which rows have no usable timestamp."""

    columns: dict[str, Column]
    bad_time: np.ndarray | None = None  # bool per row
    time_text: Column | None = None  # what the line said, for the reason
    time_label: str = "date-time"


def _mask(values: Column) -> np.ndarray:
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def parse_timestamps(text: Column) -> tuple[Column, np.ndarray]:
    """ISO 8601 text with a zone (``Z`` or an offset) -> UTC timestamps, and a per-row ok mask."""
    try:  # the usual case: every value well-formed, one cast
        stamps = text.cast(TIMESTAMP)
        return stamps, _mask(pc.is_valid(stamps))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    ok = _mask(pc.match_substring_regex(text, _ISO_US))
    clean = text if ok.all() else pc.if_else(pa.array(ok), text, _NULL_STR)
    if not ok.all():
        # .NET writes 7 fraction digits ("o" format): keep microseconds
        long_ok = _mask(pc.match_substring_regex(text, _ISO_LONG))
        if long_ok.any():
            fixed = pc.replace_substring_regex(text, _ISO_LONG, r"\1\2")
            clean = pc.if_else(pa.array(long_ok), fixed, clean)
            ok = ok | long_ok
    try:
        return clean.cast(TIMESTAMP), ok
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass  # a well-shaped but impossible date (month 13): sort them out one by one
    values: list[dt.datetime | None] = []
    for i, s in enumerate(clean.to_pylist()):
        try:
            values.append(dt.datetime.fromisoformat(s).astimezone(dt.UTC) if s is not None else None)
        except ValueError:
            values.append(None)
            ok[i] = False
    return pa.array(values, TIMESTAMP), ok


def to_int(text: Column, typ: pa.DataType) -> Column:
    """Decimal text -> integers; anything else (empty, ``-``, garbage, overflow) -> null."""
    try:  # the usual case: every value is a number or empty
        return text.cast(typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    digits = 9 if typ == pa.int32() else 18
    ok = pc.match_substring_regex(text, f"^-?[0-9]{{1,{digits}}}$")
    return pc.if_else(ok, text, _NULL_STR).cast(typ)


def null_if_empty(text: Column) -> Column:
    return pc.if_else(pc.equal(text, ""), _NULL_STR, text)


def typed_fields(columns: dict[str, pa.ChunkedArray], layout: Layout) -> Typed:
    """Message tracking and generic W3C logs: text columns, one timestamp, a few integers.

    ``date-time`` (or ``DateTime``) becomes the ``date_time`` timestamp; IIS's separate ``date``
    and ``time`` are combined into it (W3C logs write UTC).
    """
    out: dict[str, Column] = {}
    typed = Typed(out)
    names = list(layout.columns)
    if "date_time" in columns:
        typed.time_text = columns["date_time"]
        ts, ok = parse_timestamps(columns["date_time"])
        typed.bad_time = ~ok
        for name in names:
            out[name] = ts if name == "date_time" else columns[name]
    elif "date" in columns and "time" in columns:
        joined = pc.binary_join_element_wise(columns["date"], columns["time"], "T")
        typed.time_text = pc.binary_join_element_wise(columns["date"], columns["time"], " ")
        typed.time_label = "date and time"
        ts, ok = parse_timestamps(pc.binary_join_element_wise(joined, pa.scalar("Z"), ""))
        typed.bad_time = ~ok
        out["date_time"] = ts
        out.update((n, columns[n]) for n in names if n not in ("date", "time"))
    else:
        out.update((n, columns[n]) for n in names)
    if layout.kind == MESSAGE_TRACKING:
        for name in MESSAGE_TRACKING_INTS:
            if name in out:
                out[name] = to_int(out[name], pa.int64())
    return typed


def time_reason(label: str, value: str | None) -> str:
    """Reject reason for a line whose timestamp cannot be read."""
    shown = "an empty value" if not value else repr(value)
    return f"bad {label}: {shown} is not an ISO 8601 UTC time like {TIME_EXAMPLE}"

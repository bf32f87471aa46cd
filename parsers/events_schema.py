"""The ``events`` table: one row per Windows event, whatever export it came from.

Five exports (``.evtx``, wevtutil / Event Viewer XML, Event Viewer CSV and TXT, PowerShell
``Export-Csv``) carry different subsets of the same event. This module holds the schema and the
normalisations they share: error codes (``-2147023660`` and ``0x800704D4`` are one value; the SQL
macros at the end give query sessions the same normalisation, and a test holds them equal),
event data flattening, text clean-up. ``events_rows`` computes the derived columns and builds
the Arrow batches.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import pyarrow as pa

from parsers.base import SOURCE_FIELDS, TIMESTAMP, FileParser

EVENTS_TABLE = "events"

EVENT_DATA = pa.map_(pa.string(), pa.string())

EVENTS_SCHEMA = pa.schema(
    [
        pa.field("time_created", TIMESTAMP),
        pa.field("computer", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("provider", pa.string()),
        pa.field("event_id", pa.int32()),
        pa.field("qualifiers", pa.int32()),
        pa.field("version", pa.int32()),
        pa.field("level", pa.int32()),
        pa.field("level_name", pa.string()),
        pa.field("task", pa.int32()),
        pa.field("task_name", pa.string()),
        pa.field("opcode", pa.int32()),
        pa.field("opcode_name", pa.string()),
        pa.field("keywords", pa.string()),
        pa.field("keyword_names", pa.string()),
        pa.field("record_id", pa.int64()),
        pa.field("process_id", pa.int64()),
        pa.field("thread_id", pa.int64()),
        pa.field("user_sid", pa.string()),
        pa.field("message", pa.string()),
        pa.field("event_data", EVENT_DATA),
        # derived, by ``EventColumns.add``
        pa.field("event_data_json", pa.string()),
        pa.field("code", pa.string()),
        pa.field("alert_code", pa.int32()),
        pa.field("target", pa.string()),
        # where it came from
        pa.field("format", pa.string(), nullable=False),
        pa.field("time_assumed_tz", pa.string()),
        pa.field("raw", pa.string()),
        *SOURCE_FIELDS,
    ]
)

#: The columns that name one event whatever file it was read from. Exports of the same log taken
#: at different times share their older events; the warehouse keeps one row per key
#: (``warehouse.copies``). Exports without a record id (Event Viewer CSV/TXT) are never matched.
EVENTS_KEY = ("computer", "channel", "record_id", "time_created")

#: How much of a record's XML/JSON/text is kept in ``raw``.
RAW_LIMIT = 32 * 1024

LEVEL_NAMES = {0: "Information", 1: "Critical", 2: "Error", 3: "Warning", 4: "Information", 5: "Verbose"}
LEVEL_NUMBERS = {"critical": 1, "error": 2, "warning": 3, "information": 4, "verbose": 5}

#: Event data fields that hold the event's error code, best first (any numeric form).
CODE_FIELDS = (
    "ErrorCode",
    "Error",
    "ErrorValue",
    "HResult",
    "hr",
    "Status",
    "StatusCode",
    "ResultCode",
    "ReturnCode",
    "FailureCode",
    "SubStatus",
)
#: Fields whose code is written in hex without ``0x`` (CAPI2's ``<Result value="80092013">``).
HEX_CODE_FIELDS = ("Result@value", "RevocationStatus@error", "Result@error")
#: Fields naming the remote side of a failed authentication.
TARGET_FIELDS = ("TargetName", "TargetServerName", "Target")


# --- Python forms of the normalisations (reference for the SQL ones, and for tests) ----------


def hex32(value: int) -> str:
    """The canonical text of a 32-bit code: ``0x`` and eight upper-case hex digits."""
    return f"0x{value & 0xFFFFFFFF:08X}"


_ANY_HEX = re.compile(r"0[xX]0*([0-9A-Fa-f]{1,8})")
_ANY_DEC = re.compile(r"-?[0-9]{1,10}")
_STRICT_HEX = re.compile(r"0[xX][89A-Fa-f][0-9A-Fa-f]{7}")
_STRICT_DEC = re.compile(r"-[0-9]{9,10}")


def normalise_code(text: str | None, *, strict: bool = False) -> str | None:
    """``-2147023660``, ``0x800704d4`` or ``2147943636`` -> ``'0x800704D4'``; None if not a code.

    Zero (success) is not a code. ``strict`` accepts only the forms that are unmistakably an
    HRESULT/NTSTATUS failure (eight hex digits with the high bit set, or a large negative
    decimal), for scanning values and messages whose field name says nothing.
    """
    s = (text or "").strip(" ")  # as SQL's trim()
    if strict:
        if _STRICT_HEX.fullmatch(s):
            value = int(s, 16)
            return None if value == 0xFFFFFFFF else hex32(value)
        if _STRICT_DEC.fullmatch(s) and int(s) >= -(2**31):
            return hex32(int(s))
        return None
    m = _ANY_HEX.fullmatch(s)
    if m:
        value = int(m.group(1), 16)
        return hex32(value) if value else None
    if _ANY_DEC.fullmatch(s):
        value = int(s)
        if value and -(2**31) <= value <= 0xFFFFFFFF:
            return hex32(value)
    return None


def level_name(level: int | None) -> str | None:
    return None if level is None else LEVEL_NAMES.get(level)


def level_number(name: str | None) -> int | None:
    return None if name is None else LEVEL_NUMBERS.get(name.strip().lower())


def clean_message(text: str | None) -> str | None:
    """Rendered messages with ``\\n`` line ends and no trailing blank space, whatever the export."""
    if text is None:
        return None
    text = text.replace("\r\n", "\n").replace("\r", "\n").rstrip()
    return text or None


def clip(text: str | None, limit: int = RAW_LIMIT) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + f"... [{len(text) - limit} more characters]"


_SYSTEM_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?\s*(Z|[+-]\d{2}:?\d{2})?"
)


def parse_system_time(text: str | None) -> dt.datetime | None:
    """``SystemTime`` (ISO 8601, up to 100 ns precision) -> UTC, truncated to microseconds."""
    m = _SYSTEM_TIME.fullmatch((text or "").strip())
    if not m:
        return None
    day, clock, frac, zone = m.groups()
    micro = (frac or "").ljust(6, "0")[:6]
    try:
        value = dt.datetime.fromisoformat(f"{day}T{clock}.{micro}")
    except ValueError:
        return None
    offset = dt.UTC if zone in (None, "Z") else dt.datetime.strptime(zone.replace(":", ""), "%z").tzinfo
    return value.replace(tzinfo=offset).astimezone(dt.UTC)


_BLANK = " \t\n\f\r"


def event_data_text(value: Any) -> str:
    """One event data value as text: JSON scalars the way Windows renders them in XML.

    Blank values are empty and line ends are ``\\n``, as an XML parser reads them, so the binary
    log and its XML export give the same text.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if not value.strip(_BLANK):
            return ""
        return value.replace("\r\n", "\n").replace("\r", "\n") if "\r" in value else value
    return str(value)


def put(data: dict[str, str], key: str, value: str) -> None:
    """Add ``key`` to ``data``; a repeated name gets ``_2``, ``_3``... so nothing is overwritten."""
    if key not in data:
        data[key] = value
        return
    n = 2
    while f"{key}_{n}" in data:
        n += 1
    data[f"{key}_{n}"] = value


def flatten_json_event(event: Mapping[str, Any]) -> dict[str, str] | None:
    """``EventData``/``UserData`` of an event in the evtx package's JSON form, as name -> text.

    Named ``Data`` keep their names, unnamed ones are ``"1"``, ``"2"``... in order, ``Binary`` is
    kept, and ``UserData``'s one wrapper element is dropped with its children's paths joined by
    ``.`` (attributes as ``path@name``). No values at all is None. The XML parser applies the
    same rules to elements.
    """
    data: dict[str, str] = {}
    event_data = event.get("EventData")
    if isinstance(event_data, Mapping):
        _json_event_data(event_data, data)
    elif event_data is not None:
        put(data, "1", event_data_text(event_data))
    user_data = event.get("UserData")
    if isinstance(user_data, Mapping):
        for key, wrapper in user_data.items():
            if key == "#attributes":
                continue
            if isinstance(wrapper, Mapping):
                _json_tree(wrapper, "", data)
            else:
                _json_value(key, wrapper, data)
    return data or None


def _json_event_data(event_data: Mapping[str, Any], data: dict[str, str]) -> None:
    position = 0
    for key, value in event_data.items():
        if key == "#attributes":
            continue
        if key == "Binary":
            if value not in (None, ""):
                put(data, "Binary", event_data_text(value))
            continue
        if key == "Data":
            texts = value.get("#text") if isinstance(value, Mapping) else value
            items = texts if isinstance(texts, list) else [texts]
            for item in items:
                position += 1
                put(data, str(position), event_data_text(item))
            continue
        position += 1
        _json_value(key, value, data)


def _json_tree(node: Mapping[str, Any], path: str, data: dict[str, str]) -> None:
    for key, value in node.items():
        if key == "#attributes":
            if isinstance(value, Mapping):
                for name, attr in value.items():
                    if name != "xmlns" and not name.startswith("xmlns:"):
                        put(data, f"{path}@{name}", event_data_text(attr))
            continue
        if key == "#text":
            _json_value(path, value, data)
            continue
        _json_value(f"{path}.{key}" if path else key, value, data)


def _json_value(path: str, value: Any, data: dict[str, str]) -> None:
    if isinstance(value, Mapping):
        _json_tree(value, path, data)
    elif isinstance(value, list):
        for item in value:
            _json_value(path, item, data)
    else:
        put(data, path, event_data_text(value))


# --- the same normalisation in SQL, for query sessions -----------------------------------------

#: SQL macros of the code normalisation; also defined in every query session (warehouse.macros).
SQL_MACROS: list[str] = [
    # any numeric form -> '0x%08X' (NULL for zero, text, or out of 32-bit range)
    "CREATE OR REPLACE MACRO hresult(v) AS (CASE "
    "WHEN regexp_full_match(trim(CAST(v AS VARCHAR), ' '), '0[xX]0*[0-9A-Fa-f]{1,8}') "
    "THEN NULLIF('0x' || upper(lpad(ltrim(substr(trim(CAST(v AS VARCHAR), ' '), 3), '0'), 8, '0')), '0x00000000') "
    "WHEN regexp_full_match(trim(CAST(v AS VARCHAR), ' '), '-?[0-9]{1,10}') "
    "AND TRY_CAST(trim(CAST(v AS VARCHAR), ' ') AS BIGINT) BETWEEN -2147483648 AND 4294967295 "
    "AND TRY_CAST(trim(CAST(v AS VARCHAR), ' ') AS BIGINT) <> 0 "
    "THEN printf('0x%08X', (TRY_CAST(trim(CAST(v AS VARCHAR), ' ') AS BIGINT) + 4294967296) % 4294967296) "
    "END)",
    # only unmistakable failure codes: 0x8.......-0xF....... or a large negative decimal
    "CREATE OR REPLACE MACRO hresult_strict(v) AS (CASE "
    "WHEN regexp_full_match(trim(v, ' '), '0[xX][89A-Fa-f][0-9A-Fa-f]{7}') AND upper(trim(v, ' ')) <> '0XFFFFFFFF' "
    "THEN '0x' || upper(substr(trim(v, ' '), 3)) "
    "WHEN regexp_full_match(trim(v, ' '), '-[0-9]{9,10}') AND TRY_CAST(trim(v, ' ') AS BIGINT) >= -2147483648 "
    "THEN printf('0x%08X', TRY_CAST(trim(v, ' ') AS BIGINT) + 4294967296) "
    "END)",
    # hex digits without 0x (CAPI2 writes result codes so)
    "CREATE OR REPLACE MACRO hresult_hex(v) AS (CASE "
    "WHEN regexp_full_match(trim(v, ' '), '[0-9A-Fa-f]{1,8}') THEN hresult('0x' || trim(v, ' ')) END)",
]


class EventsParser(FileParser):
    """Common face of the Windows event formats: they all fill ``events``."""

    TABLES: ClassVar[dict[str, pa.Schema]] = {EVENTS_TABLE: EVENTS_SCHEMA}

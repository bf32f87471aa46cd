"""What every identity-sync format shares: the ``sync_errors`` schema, error-type names, the
split of Azure AD's error sentences into attribute and value, and timestamps (reading text files
with byte offsets whatever their encoding is ``parsers.text``'s).

The four sync-error formats (csexport XML, Connect Health / provisioning-error CSV, Graph JSON,
the notification e-mail) describe the same failures in different words; normalising here is what
lets one rule or one reconciliation query cover all of them.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import re
import uuid
from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

import pyarrow as pa

from parsers.base import SOURCE_FIELDS, TIMESTAMP, FileBatch, FileParser, ParseResult, Reject, rejects_table

TABLE = "sync_errors"

SCHEMA = pa.schema(
    [
        pa.field("time", TIMESTAMP),
        pa.field("connector", pa.string()),
        pa.field("error_type", pa.string()),
        pa.field("attribute", pa.string()),
        pa.field("conflicting_value", pa.string()),
        pa.field("dn", pa.string()),
        pa.field("upn", pa.string()),
        pa.field("source_anchor", pa.string()),
        pa.field("object_guid", pa.string()),
        pa.field("object_id", pa.string()),
        pa.field("error_text", pa.string()),
        pa.field("tracking_id", pa.string()),
        pa.field("export_format", pa.string()),
        pa.field("raw", pa.string()),
        *SOURCE_FIELDS,
    ]
)

#: The error names of Microsoft's "Troubleshoot errors during synchronization" page, plus the
#: ones Connect Health reports. Output always uses these spellings.
ERROR_TYPES = [
    "InvalidSoftMatch",
    "InvalidHardMatch",
    "ObjectTypeMismatch",
    "AttributeValueMustBeUnique",
    "IdentityDataValidationFailed",
    "DataValidationFailed",
    "LargeObject",
    "ExceededAllowedLength",
    "FederatedDomainChangeError",
    "ExistingAdminRoleConflict",
    "DeletingCloudOnlyObjectNotAllowed",
    "DomainMismatch",
    "DomainNotVerified",
]
_CANONICAL = {name.lower(): name for name in ERROR_TYPES}
_ALIASES = {
    # Graph / MSOnline report duplicate values as a category, not an error name
    "propertyconflict": "AttributeValueMustBeUnique",
    "quarantinedattributevaluemustbeunique": "AttributeValueMustBeUnique",
    "duplicateattribute": "AttributeValueMustBeUnique",
    "datavalidationfailure": "DataValidationFailed",
    "largeattribute": "LargeObject",
    "federateddomainchange": "FederatedDomainChangeError",
    "existingadminrole": "ExistingAdminRoleConflict",
    "adminroleconflict": "ExistingAdminRoleConflict",
}

#: Sentences Azure AD writes, and the error they mean when no error name comes with them.
_TEXT_HINTS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"values? that may already be associated with another object", re.I),
        "AttributeValueMustBeUnique",
    ),
    (re.compile(r"same proxy address already exists", re.I), "AttributeValueMustBeUnique"),
    (re.compile(r"FederatedUser\.UserPrincipalName", re.I), "FederatedDomainChangeError"),
    (re.compile(r"exceeds? the (?:maximum|allowed)|too large|LargeObject", re.I), "LargeObject"),
    (re.compile(r"admin(?:istrative)? role", re.I), "ExistingAdminRoleConflict"),
]


def normalise_error_type(*names: str | None, text: str | None = None) -> str | None:
    """The documented name for the first recognisable of ``names``, else one inferred from
    ``text``, else the first non-empty name as given (an unknown type is kept, not guessed)."""
    for name in names:
        if not name:
            continue
        key = re.sub(r"[\s_\-]", "", name).lower()
        if key in _CANONICAL:
            return _CANONICAL[key]
        if key in _ALIASES:
            return _ALIASES[key]
    if text:
        for pattern, inferred in _TEXT_HINTS:
            if pattern.search(text):
                return inferred
    for name in names:
        if name and name.strip():
            return name.strip()
    return None


# "[ProxyAddresses smtp:john@contoso.com;]" / "[UserPrincipalName john@contoso.com;]"
_BRACKET_PAIR = re.compile(r"\[\s*([A-Za-z][\w.]*)\s+([^\]\s][^\]]*?)\s*;?\s*\]")
# "[FederatedUser.UserPrincipalName]" (an attribute without value)
_BRACKET_NAME = re.compile(r"\[\s*([A-Za-z][\w.]*)\s*\]")
_TRACKING = re.compile(
    r"Tracking\s*Id\s*:\s*\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
)
_EXTRA = re.compile(r"\[\s*\{\s*\"Key\".*\}\s*\]", re.S)


def split_attribute(text: str | None) -> tuple[str | None, str | None]:
    """Attribute and value from the bracket of an Azure AD error sentence.

    Several values of one attribute stay together, separated by ``;`` as Azure AD wrote them.
    """
    if not text:
        return None, None
    m = _BRACKET_PAIR.search(text)
    if m:
        return m.group(1).split(".")[-1], m.group(2).strip().rstrip(";").strip() or None
    m = _BRACKET_NAME.search(text)
    if m:
        return m.group(1).split(".")[-1], None
    return None, None


_ATTRIBUTES = {
    "proxyaddress": "ProxyAddresses",
    "proxyaddresses": "ProxyAddresses",
    "userprincipalname": "UserPrincipalName",
    "sipproxyaddress": "SipProxyAddress",
    "mail": "Mail",
    "onpremisessecurityidentifier": "OnPremisesSecurityIdentifier",
}


def normalise_attribute(name: str | None) -> str | None:
    """One spelling per attribute: Graph says ``ProxyAddress``, the sync engine ``ProxyAddresses``."""
    if not name or not name.strip():
        return None
    return _ATTRIBUTES.get(name.strip().lower(), name.strip())


def tracking_id(text: str | None) -> str | None:
    m = _TRACKING.search(text or "")
    return m.group(1).lower() if m else None


def extra_error_details(text: str | None) -> dict[str, str]:
    """The ``ExtraErrorDetails`` key/value list Azure AD appends to export errors, flattened."""
    m = _EXTRA.search(text or "")
    if not m:
        return {}
    try:
        items = json.loads(m.group(0))
    except ValueError:
        return {}
    out: dict[str, str] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("Key"), str):
            value = item.get("Value")
            if isinstance(value, list):
                value = ";".join(str(v) for v in value)
            if value is not None:
                out[item["Key"]] = str(value)
    return out


# --- GUID / ImmutableID ----------------------------------------------------------------------

_GUID = re.compile(
    r"^\{?([0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12})\}?$"
)


def normalise_guid(value: str | None) -> str | None:
    """``{A15DF3DC-...}`` or ``a15df3dc...`` as the lower-case dashed form, else None."""
    m = _GUID.match((value or "").strip())
    return str(uuid.UUID(m.group(1))) if m else None


def guid_to_immutable_id(guid: str | None) -> str | None:
    """Base64 of the GUID's bytes in .NET ``Guid.ToByteArray`` (little-endian) order."""
    g = normalise_guid(guid)
    return base64.b64encode(uuid.UUID(g).bytes_le).decode("ascii") if g else None


def immutable_id_to_guid(immutable_id: str | None) -> str | None:
    """The objectGUID an ImmutableID encodes, or None if it is not base64 of 16 bytes."""
    text = (immutable_id or "").strip()
    if not text:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        return None
    return str(uuid.UUID(bytes_le=raw)) if len(raw) == 16 else None


# --- time ------------------------------------------------------------------------------------

_NAIVE_FORMATS = [
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S",
    "%Y.%m.%d %H:%M:%S.%f",
    "%Y.%m.%d %H:%M:%S",
    "%d.%m.%Y %H:%M:%S",
    "%A, %d %B %Y %H:%M:%S",
    "%A, %B %d, %Y %H:%M:%S",
    "%d %B %Y %H:%M:%S",
]
_SLASHED = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?$")


def parse_time(text: str | None, tz: str = "UTC") -> dt.datetime | None:
    """A timestamp as UTC; naive values are wall-clock time in ``tz``.

    ``M/d/yyyy`` (PowerShell's en-US default) is assumed for slashed dates unless the first number
    cannot be a month; a trailing ``GMT``/``UTC``/``Z`` or an offset wins over ``tz``.
    """
    s = (text or "").strip().strip('"')
    if not s:
        return None
    zone: dt.tzinfo = ZoneInfo(tz)
    for suffix in (" GMT", " UTC", "Z"):
        if s.endswith(suffix):
            s, zone = s[: -len(suffix)].strip(), dt.UTC
            break
    value: dt.datetime | None = None
    with contextlib.suppress(ValueError):
        value = dt.datetime.fromisoformat(s)
    if value is None:
        m = _SLASHED.match(s)
        if m:
            a, b, year, hour, minute, sec, ampm = m.groups()
            month, day = (int(a), int(b)) if int(a) <= 12 else (int(b), int(a))
            h = int(hour)
            if ampm:
                h = h % 12 + (12 if ampm.lower() == "pm" else 0)
            try:
                value = dt.datetime(int(year), month, day, h, int(minute), int(sec or 0))
            except ValueError:
                return None
    if value is None:
        for fmt in _NAIVE_FORMATS:
            try:
                value = dt.datetime.strptime(s, fmt)
                break
            except ValueError:
                continue
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(dt.UTC)


def rows_table(rows: list[dict[str, object]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


def batched(
    items: Iterator[dict[str, object] | Reject],
    *,
    table: str,
    schema: pa.Schema,
    end: int,
    batch_records: int,
) -> Iterator[FileBatch]:
    """Group row dicts and rejects (one per record) into bounded ``FileBatch``es.

    A batch's position is one past its last record's offset, so positions grow strictly; the
    last batch ends at ``end`` (the file size), which marks the file complete.
    """
    rows: list[dict[str, object]] = []
    rejects: list[Reject] = []
    last = -1
    handed = 0  # position of the last batch handed out
    for item in items:
        if isinstance(item, Reject):
            rejects.append(item)
            last = max(last, item.source_offset)
        else:
            rows.append(item)
            last = max(last, int(item["source_offset"]))  # type: ignore[call-overload]
        if len(rows) + len(rejects) >= batch_records:
            handed = last + 1
            yield _batch(rows, rejects, table, schema, handed)
            rows, rejects = [], []
    final = max(end, last + 1, 1)
    if rows or rejects or final > handed:  # an empty batch at the same position adds nothing
        yield _batch(rows, rejects, table, schema, final)


class RecordFileParser(FileParser):
    """A whole-file format read as one row dict or one reject per record, batched by ``batched``.

    Subclasses name their table and schema and yield the records from ``_items``.
    """

    table: ClassVar[str] = TABLE
    schema: ClassVar[pa.Schema] = SCHEMA
    #: True when offsets are bytes, so the last batch ends at the file size (False: ordinals)
    byte_offsets: ClassVar[bool] = True

    def parse_file(self, path: Path, *, source: str, batch_records: int = 50_000) -> Iterator[FileBatch]:
        end = path.stat().st_size if self.byte_offsets else 0
        yield from batched(
            self._items(path, source),
            table=self.table,
            schema=self.schema,
            end=end,
            batch_records=batch_records,
        )

    @abstractmethod
    def _items(self, path: Path, source: str) -> Iterator[dict[str, object] | Reject]:
        """Every record of the file, in order, as a row dict or a reject."""


def _batch(
    rows: list[dict[str, object]], rejects: list[Reject], table: str, schema: pa.Schema, position: int
) -> FileBatch:
    result = ParseResult(records_read=len(rows) + len(rejects))
    if rows:
        result.add(table, rows_table(rows, schema))
    if rejects:
        result.rejects = rejects_table(rejects)
    return FileBatch(result, position)

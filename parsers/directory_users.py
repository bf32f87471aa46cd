"""User exports of both directories, the two sides of the identity reconciliation.

* ``ad_users``: ``Get-ADUser -Filter * -Properties mail,proxyAddresses | Select ... | Export-Csv``
  (SamAccountName, UserPrincipalName, ObjectGUID, DistinguishedName, Enabled, mail, proxyAddresses);
* ``aad_users``: ``Get-MsolUser -All | Export-Csv`` (UserPrincipalName, ImmutableId, ObjectId,
  LastDirSyncTime, ProxyAddresses) or ``Get-MgUser -All -Property ... | Export-Csv``
  (Id, UserPrincipalName, OnPremisesImmutableId, OnPremisesSyncEnabled, OnPremisesLastSyncDateTime).

Both sides get ``object_guid`` and ``immutable_id`` (base64 of the GUID's .NET byte order), so the
warehouse joins them without conversions. ``Export-Csv`` writes a multi-valued property as its
type name (``Microsoft.ActiveDirectory.Management.ADPropertyValueCollection``) unless the script
joins it; such a value is left empty and the row's ``note`` says how to export it. A user whose
key is missing or unreadable (no GUID on the AD side, no UPN on the Azure side) is rejected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from parsers.base import SOURCE_FIELDS, TIMESTAMP, Reject
from parsers.sync_errors_common import (
    RecordFileParser,
    guid_to_immutable_id,
    immutable_id_to_guid,
    normalise_guid,
    parse_time,
)
from parsers.sync_errors_csv import sync_error_flavour
from parsers.sync_errors_pscsv import header_key, records, sniff_header

AD_TABLE = "ad_users"
AAD_TABLE = "aad_users"

_COMMON = [
    pa.field("user_principal_name", pa.string()),
    pa.field("display_name", pa.string()),
    pa.field("object_guid", pa.string()),
    pa.field("immutable_id", pa.string()),
    pa.field("mail", pa.string()),
    pa.field("proxy_addresses", pa.list_(pa.string())),
]
AD_SCHEMA = pa.schema(
    [
        pa.field("sam_account_name", pa.string()),
        *_COMMON,
        pa.field("distinguished_name", pa.string()),
        pa.field("parent_dn", pa.string()),
        pa.field("enabled", pa.bool_()),
        pa.field("note", pa.string()),
        *SOURCE_FIELDS,
    ]
)
AAD_SCHEMA = pa.schema(
    [
        pa.field("object_id", pa.string()),
        *_COMMON,
        pa.field("sync_enabled", pa.bool_()),
        pa.field("last_dir_sync_time", TIMESTAMP),
        pa.field("on_premises_dn", pa.string()),
        pa.field("note", pa.string()),
        *SOURCE_FIELDS,
    ]
)
SCHEMAS = {AD_TABLE: AD_SCHEMA, AAD_TABLE: AAD_SCHEMA}

_TYPE_NAME = re.compile(r"^(Microsoft\.ActiveDirectory\.Management\.\w+|System\.[\w.`\[\]]+)$")
_SPLIT_ON_PREFIX = re.compile(r"\s+(?=[A-Za-z0-9]{1,16}:)")
_EXPORT_HINT = "export it joined: @{n='proxyAddresses';e={$_.proxyAddresses -join ';'}}"


def split_addresses(value: str) -> list[str]:
    """Proxy addresses joined with ``;``, ``|`` or spaces (X500 addresses may contain spaces)."""
    for sep in (";", "|", "\n"):
        if sep in value:
            return [a.strip() for a in value.split(sep) if a.strip()]
    return [a for a in _SPLIT_ON_PREFIX.split(value.strip()) if a]


def _bool(value: str | None) -> bool | None:
    v = (value or "").strip().lower()
    return True if v == "true" else False if v == "false" else None


def _parent(dn: str | None) -> str | None:
    """The container of a DN: everything after the first unescaped comma."""
    if not dn:
        return None
    m = re.search(r"(?<!\\),", dn)
    return dn[m.end() :].strip() if m else None


class _UsersCsvParser(RecordFileParser):
    """Shared reading; subclasses name their table, detection and row mapping."""

    table: ClassVar[str]
    schema: ClassVar[pa.Schema]
    aliases: ClassVar[dict[str, list[str]]]

    @classmethod
    def matches(cls, keys: set[str]) -> bool:
        raise NotImplementedError

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        keys = sniff_header(head)
        if not keys or sync_error_flavour(keys):
            return 0
        return 88 if cls.matches(set(keys)) else 0

    def _items(self, path: Path, source: str) -> Iterator[dict[str, object] | Reject]:
        for header, recs in records(path):
            keys = [header_key(h) for h in header]
            index = {
                t: next((keys.index(a) for a in names if a in keys), None)
                for t, names in self.aliases.items()
            }
            for rec in recs:
                if rec.fields is None:
                    yield Reject(
                        source, rec.offset, rec.line_number, self.name, rec.problem or "bad record", rec.raw
                    )
                    continue
                fields = rec.fields

                def get(
                    target: str, fields: list[str] = fields, index: dict[str, int | None] = index
                ) -> str | None:
                    i = index.get(target)
                    value = fields[i].strip() if i is not None else ""
                    return value or None

                row = self.row(get)
                if isinstance(row, str):
                    yield Reject(source, rec.offset, rec.line_number, self.name, row, rec.raw)
                    continue
                row.update(source_file=source, source_offset=rec.offset, line_number=rec.line_number)
                yield row

    def row(self, get: Callable[[str], str | None]) -> dict[str, object] | str:
        """The row for one record, or the reason it is rejected."""
        raise NotImplementedError


def _addresses(get: Callable[[str], str | None], notes: list[str]) -> list[str] | None:
    value = get("proxy_addresses")
    if value is None:
        return None
    if _TYPE_NAME.match(value):
        notes.append(f"proxyAddresses was exported as the type name {value}; {_EXPORT_HINT}")
        return None
    return split_addresses(value)


class AdUsersCsvParser(_UsersCsvParser):
    name: ClassVar[str] = "ad_users_csv"
    table: ClassVar[str] = AD_TABLE
    schema: ClassVar[pa.Schema] = AD_SCHEMA
    aliases: ClassVar[dict[str, list[str]]] = {
        "sam": ["samaccountname"],
        "upn": ["userprincipalname"],
        "display_name": ["displayname", "name"],
        "guid": ["objectguid"],
        "dn": ["distinguishedname"],
        "enabled": ["enabled"],
        "mail": ["mail", "emailaddress"],
        "proxy_addresses": ["proxyaddresses"],
    }

    @classmethod
    def matches(cls, keys: set[str]) -> bool:
        return "objectguid" in keys and bool({"samaccountname", "distinguishedname"} & keys)

    def row(self, get: Callable[[str], str | None]) -> dict[str, object] | str:
        guid = normalise_guid(get("guid"))
        if guid is None:
            return f"ObjectGUID {get('guid')!r} is not a GUID (the key that links the user to Azure AD)"
        notes: list[str] = []
        return {
            "sam_account_name": get("sam"),
            "user_principal_name": get("upn"),
            "display_name": get("display_name"),
            "object_guid": guid,
            "immutable_id": guid_to_immutable_id(guid),
            "mail": get("mail"),
            "proxy_addresses": _addresses(get, notes),
            "distinguished_name": get("dn"),
            "parent_dn": _parent(get("dn")),
            "enabled": _bool(get("enabled")),
            "note": "; ".join(notes) or None,
        }


class AadUsersCsvParser(_UsersCsvParser):
    name: ClassVar[str] = "aad_users_csv"
    table: ClassVar[str] = AAD_TABLE
    schema: ClassVar[pa.Schema] = AAD_SCHEMA
    aliases: ClassVar[dict[str, list[str]]] = {
        "object_id": ["objectid", "id"],
        "upn": ["userprincipalname"],
        "display_name": ["displayname"],
        "immutable_id": ["onpremisesimmutableid", "immutableid"],
        "mail": ["mail"],
        "proxy_addresses": ["proxyaddresses"],
        "sync_enabled": ["onpremisessyncenabled", "dirsyncenabled"],
        "last_sync": ["onpremiseslastsyncdatetime", "lastdirsynctime"],
        "dn": ["onpremisesdistinguishedname"],
    }

    @classmethod
    def matches(cls, keys: set[str]) -> bool:
        return (
            "userprincipalname" in keys
            and bool({"immutableid", "onpremisesimmutableid"} & keys)
            and not ({"samaccountname", "distinguishedname"} & keys)
        )

    def row(self, get: Callable[[str], str | None]) -> dict[str, object] | str:
        upn = get("upn")
        if upn is None:
            return "no UserPrincipalName"
        notes: list[str] = []
        immutable = get("immutable_id")
        guid = immutable_id_to_guid(immutable)
        if immutable and guid is None:
            notes.append("ImmutableId is not the base64 of a GUID: this user is not anchored on objectGUID")
        last = get("last_sync")
        last_time = parse_time(last, "UTC") if last else None  # both modules report UTC
        if last and last_time is None:
            return f"unreadable last sync time {last!r}"
        sync = _bool(get("sync_enabled"))
        return {
            "object_id": normalise_guid(get("object_id")) or get("object_id"),
            "user_principal_name": upn,
            "display_name": get("display_name"),
            "object_guid": guid,
            "immutable_id": immutable,
            "mail": get("mail"),
            "proxy_addresses": _addresses(get, notes),
            "sync_enabled": sync if sync is not None else (True if immutable and last_time else None),
            "last_dir_sync_time": last_time,
            "on_premises_dn": get("dn"),
            "note": "; ".join(notes) or None,
        }

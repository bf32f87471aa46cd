"""Sync errors exported as CSV: Connect Health / Entra admin centre, MSOnline, Microsoft Graph.

Three producers, one mapping by header name:

* ``Get-MsolDirSyncProvisioningError`` flattened one error per line (``ErrorCategory``,
  ``PropertyName``, ``PropertyValue``, ``WhenStarted``, ``ImmutableId``, ``ObjectId`` ...);
* Graph ``onPremisesProvisioningErrors`` flattened (``category``, ``propertyCausingError``,
  ``value``, ``occurredDateTime`` beside the user's ``id`` / ``userPrincipalName``);
* the Connect Health sync-error report ("Export" in the portal). Microsoft does not publish its
  column list, so columns are matched by the names the portal shows (Error Type, Category,
  UserPrincipalName, Source Anchor, Attribute, Value, Detected ...) through aliases below; an
  unknown column is kept in ``raw``, never dropped.

Whole-file format (records can span lines inside quotes), read one record at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from parsers.base import Reject
from parsers.sync_errors_common import (
    RecordFileParser,
    extra_error_details,
    guid_to_immutable_id,
    immutable_id_to_guid,
    normalise_attribute,
    normalise_error_type,
    normalise_guid,
    parse_time,
    split_attribute,
    tracking_id,
)
from parsers.sync_errors_pscsv import header_key, records, sniff_header

#: Target field -> header keys (normalised) that may hold it, in order of preference.
ALIASES: dict[str, list[str]] = {
    "error_type": ["errortype", "errorname", "error", "type"],
    "category": ["errorcategory", "category"],
    "time": ["occurreddatetime", "whenstarted", "detected", "lastupdated", "errortime", "timestamp", "time"],
    "connector": ["connector", "connectorname"],
    "attribute": [
        "propertycausingerror",
        "propertyname",
        "attribute",
        "attributename",
        "conflictingattribute",
    ],
    "value": ["value", "propertyvalue", "attributevalue", "conflictingvalue", "conflictvalue"],
    "dn": ["onpremisesdistinguishedname", "distinguishedname", "dn"],
    "upn": ["userprincipalname", "upn"],
    "source_anchor": ["onpremisesimmutableid", "immutableid", "sourceanchor"],
    "object_guid": ["objectguid", "sourceobjectguid"],
    "object_id": ["objectid", "azureadobjectid", "aadobjectid", "id"],
    "text": ["errordescription", "description", "message", "errordetails", "details", "errortext"],
    "tracking_id": ["trackingid"],
}

#: A header must name one of these to be a sync-error export (user exports do not).
_ERROR_MARKERS = {"errortype", "errorcategory", "propertycausingerror", "errorname"}


def sync_error_flavour(keys: list[str]) -> str | None:
    if "propertycausingerror" in keys:
        return "graph_csv"
    if "errorcategory" in keys and "propertyname" in keys:
        return "msol_csv"
    if _ERROR_MARKERS & set(keys) or ("category" in keys and "attribute" in keys):
        return "health_csv"
    return None


class SyncErrorsCsvParser(RecordFileParser):
    name: ClassVar[str] = "sync_errors_csv"

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        keys = sniff_header(head)
        return 90 if keys and sync_error_flavour(keys) else 0

    def _items(self, path: Path, source: str) -> Iterator[dict[str, object] | Reject]:
        for header, recs in records(path):
            keys = [header_key(h) for h in header]
            flavour = sync_error_flavour(keys) or "health_csv"
            index = {
                target: next((keys.index(a) for a in names if a in keys), None)
                for target, names in ALIASES.items()
            }
            for rec in recs:
                if rec.fields is None:
                    yield Reject(
                        source, rec.offset, rec.line_number, self.name, rec.problem or "bad record", rec.raw
                    )
                    continue
                yield self._row(rec.fields, index, flavour, source, rec.offset, rec.line_number, rec.raw)

    def _row(
        self,
        fields: list[str],
        index: dict[str, int | None],
        flavour: str,
        source: str,
        offset: int,
        line: int,
        raw: str,
    ) -> dict[str, object] | Reject:
        def get(target: str) -> str | None:
            i = index[target]
            value = fields[i].strip() if i is not None else ""
            return value or None

        text = get("text")
        if not any((get("error_type"), get("category"), text)):
            return Reject(
                source, offset, line, self.name, "record names no error type, category or description", raw
            )
        time_text = get("time")
        time = parse_time(time_text, self.options.timezone) if time_text else None
        if time_text and time is None:
            return Reject(source, offset, line, self.name, f"unreadable time {time_text!r}", raw)
        attribute, value = get("attribute"), get("value")
        if attribute is None and value is None:
            attribute, value = split_attribute(text)
        extra = extra_error_details(text)
        anchor = get("source_anchor")
        guid = normalise_guid(get("object_guid"))
        object_id = get("object_id")
        return {
            "time": time,
            "connector": get("connector"),
            "error_type": normalise_error_type(get("error_type"), get("category"), text=text),
            "attribute": normalise_attribute(attribute),
            "conflicting_value": value,
            "dn": get("dn"),
            "upn": get("upn"),
            "source_anchor": anchor or guid_to_immutable_id(guid),
            "object_guid": guid or immutable_id_to_guid(anchor),
            "object_id": normalise_guid(object_id) or object_id or extra.get("ObjectId"),
            "error_text": text,
            "tracking_id": get("tracking_id") or tracking_id(text),
            "export_format": flavour,
            "raw": raw,
            "source_file": source,
            "source_offset": offset,
            "line_number": line,
        }

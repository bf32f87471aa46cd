"""Provisioning errors as JSON: Microsoft Graph and the MSOnline / Graph PowerShell modules.

Accepted shapes (keys compared without case, so ``ConvertTo-Json``'s PascalCase works too):

* a Graph response ``{"value": [user, ...]}`` or a bare list of users, each with
  ``onPremisesProvisioningErrors: [{category, propertyCausingError, value, occurredDateTime}]``;
* ``Get-MsolDirSyncProvisioningError | ConvertTo-Json``: objects with
  ``ProvisioningErrors: [{ErrorCategory, PropertyName, PropertyValue, WhenStarted}]``
  (Windows PowerShell writes dates as ``\\/Date(ms)\\/``).

The unit is one error entry: a user with two errors gives two rows, a user without errors gives
none (it is not an error). JSON has no streaming reader in the standard library, so a file is
read whole up to ``MAX_BYTES``; provisioning-error exports list only objects in error and stay far
below it. Offsets are entry ordinals (0, 1, ...), as JSON offers no line-level position.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from parsers.base import Reject
from parsers.sync_errors_common import (
    RecordFileParser,
    immutable_id_to_guid,
    normalise_attribute,
    normalise_error_type,
    normalise_guid,
    parse_time,
)
from parsers.text import sniff_text

MAX_BYTES = 256 * 1024 * 1024
_MS_DATE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")
_ERROR_LISTS = ("onpremisesprovisioningerrors", "provisioningerrors", "dirsyncprovisioningerrors")


def _get(obj: dict[str, Any], *names: str) -> Any:
    lowered = {k.lower(): v for k, v in obj.items()}
    for name in names:
        value = lowered.get(name)
        if value not in (None, "", []):
            return value
    return None


def _time(value: Any, tz: str) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    m = _MS_DATE.match(value)
    if m:
        return dt.datetime.fromtimestamp(int(m.group(1)) / 1000, tz=dt.UTC)
    return parse_time(value, tz)


class SyncErrorsJsonParser(RecordFileParser):
    byte_offsets: ClassVar[bool] = False  # offsets are record ordinals
    name: ClassVar[str] = "sync_errors_json"

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        text = (sniff_text(head) or "").lstrip()
        if text[:1] in ("{", "[") and re.search(r'"(?:onPremises)?ProvisioningErrors"\s*:', text, re.I):
            return 90
        return 0

    def _items(self, path: Path, source: str) -> Iterator[dict[str, object] | Reject]:
        size = path.stat().st_size
        if size > MAX_BYTES:
            yield Reject(
                source,
                0,
                None,
                self.name,
                f"JSON export of {size:,} bytes is over {MAX_BYTES:,}: not read",
                None,
            )
            return
        data = path.read_bytes()
        encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
        try:
            doc = json.loads(data.decode(encoding))
        except (UnicodeDecodeError, ValueError) as exc:
            yield Reject(
                source, 0, None, self.name, f"not valid JSON: {exc}", data[:2000].decode("utf-8", "replace")
            )
            return
        objects = _get(doc, "value") if isinstance(doc, dict) else doc
        if isinstance(doc, dict) and objects is None:
            objects = [doc]
        if not isinstance(objects, list):
            yield Reject(
                source, 0, None, self.name, "JSON is neither a list of objects nor {value: [...]}", None
            )
            return
        ordinal = 0
        for obj in objects:
            errors = _get(obj, *_ERROR_LISTS) if isinstance(obj, dict) else None
            if isinstance(errors, dict):  # ConvertTo-Json writes a one-element list as an object
                errors = [errors]
            for entry in errors if isinstance(errors, list) else []:
                yield self._row(obj, entry, source, ordinal)
                ordinal += 1

    def _row(self, obj: dict[str, Any], entry: Any, source: str, ordinal: int) -> dict[str, object] | Reject:
        raw = json.dumps(entry, ensure_ascii=False, default=str)
        if not isinstance(entry, dict):
            return Reject(source, ordinal, None, self.name, "provisioning error entry is not an object", raw)
        category = _get(entry, "category", "errorcategory")
        when = _get(entry, "occurreddatetime", "whenstarted")
        time = _time(when, self.options.timezone)
        if when is not None and time is None:
            return Reject(source, ordinal, None, self.name, f"unreadable time {when!r}", raw)
        anchor = _get(obj, "onpremisesimmutableid", "immutableid")
        object_id = _get(obj, "id", "objectid")
        attribute = _get(entry, "propertycausingerror", "propertyname")
        return {
            "time": time,
            "connector": None,
            "error_type": normalise_error_type(category),
            "attribute": normalise_attribute(attribute),
            "conflicting_value": _get(entry, "value", "propertyvalue"),
            "dn": _get(obj, "onpremisesdistinguishedname", "distinguishedname"),
            "upn": _get(obj, "userprincipalname"),
            "source_anchor": anchor,
            "object_guid": immutable_id_to_guid(anchor),
            "object_id": normalise_guid(str(object_id)) if object_id else None,
            "error_text": None,  # Graph and MSOnline give a category, no sentence (see raw)
            "tracking_id": None,
            "export_format": "graph_json" if _get(entry, "category") else "msol_json",
            "raw": raw,
            "source_file": source,
            "source_offset": ordinal,
            "line_number": None,
        }

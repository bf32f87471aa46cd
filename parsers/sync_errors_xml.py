"""Export errors of the Synchronization Service: ``csexport "<connector>" errors.xml /f:x``.

The file is one ``<cs-objects>`` document; each ``<cs-object>`` with an ``export-errordetail``
(or ``import-errordetail``) becomes one row. It is read with expat in fixed-size pieces and only
the current ``cs-object`` is kept as a tree, so memory stays flat on exports of any size, and
every row carries the byte offset and line where its ``cs-object`` starts.

Where the AAD connector puts things: ``cd-error/error-name`` holds the error name
(``AttributeValueMustBeUnique``), ``error-literal`` the sentence, ``server-error-detail`` the
tracking id and ``ExtraErrorDetails`` (ObjectId, AttributeConflictName/Values); the hologram
``attr`` elements hold ``userPrincipalName``, ``sourceAnchor``, ``cloudAnchor`` and
``onPremisesDistinguishedName``. Timestamps (``date-occurred``) are the sync engine's UTC.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar
from xml.parsers import expat

from parsers.base import Reject
from parsers.sync_errors_common import (
    RecordFileParser,
    extra_error_details,
    immutable_id_to_guid,
    normalise_attribute,
    normalise_error_type,
    normalise_guid,
    parse_time,
    split_attribute,
    tracking_id,
)
from parsers.text import sniff_text

READ_BYTES = 1 << 20
_ERROR_DETAILS = ("export-errordetail", "import-errordetail")
_HOLOGRAM_ATTRS = (
    "userPrincipalName",
    "sourceAnchor",
    "cloudAnchor",
    "onPremisesDistinguishedName",
    "objectGUID",
)


class CsExportParser(RecordFileParser):
    name: ClassVar[str] = "csexport_xml"

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        text = sniff_text(head) or ""
        if "<cs-objects" in text and ("errordetail" in text or "<cs-object" in text):
            return 95
        return 0

    def _items(self, path: Path, source: str) -> Iterator[dict[str, object] | Reject]:
        reader = _CsObjectReader()
        with path.open("rb") as f:
            while True:
                block = f.read(READ_BYTES)
                try:
                    reader.feed(block, final=not block)
                except expat.ExpatError as exc:
                    yield from self._convert(reader.take(), source)
                    where = reader.parser.CurrentByteIndex
                    yield Reject(
                        source,
                        max(where, 0),
                        reader.parser.CurrentLineNumber,
                        self.name,
                        f"XML is not well-formed ({expat.ErrorString(exc.code)}); "
                        f"the rest of the file from byte {max(where, 0)} was not read",
                        None,
                    )
                    return
                yield from self._convert(reader.take(), source)
                if not block:
                    return

    def _convert(
        self, objects: list[tuple[int, int, ET.Element]], source: str
    ) -> Iterator[dict[str, object] | Reject]:
        for offset, line, element in objects:
            detail = next((c for c in element if c.tag in _ERROR_DETAILS), None)
            if detail is None:
                yield Reject(
                    source,
                    offset,
                    line,
                    self.name,
                    "cs-object has no export-errordetail or import-errordetail: not an error "
                    "(csexport with /f:x writes only objects in error)",
                    ET.tostring(element, encoding="unicode")[:2000],
                )
                continue
            yield _row(element, detail, source, offset, line)


class _CsObjectReader:
    """Expat callbacks that build one ``cs-object`` at a time and queue it when it closes."""

    def __init__(self) -> None:
        self.parser = expat.ParserCreate()
        self.parser.buffer_text = True
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CharacterDataHandler = self._data
        self.builder: ET.TreeBuilder | None = None
        self.start: tuple[int, int] = (0, 0)
        self.done: list[tuple[int, int, ET.Element]] = []

    def feed(self, data: bytes, *, final: bool) -> None:
        self.parser.Parse(data, final)

    def take(self) -> list[tuple[int, int, ET.Element]]:
        done, self.done = self.done, []
        return done

    def _start(self, tag: str, attrs: dict[str, str]) -> None:
        if tag == "cs-object" and self.builder is None:
            self.builder = ET.TreeBuilder()
            self.start = (self.parser.CurrentByteIndex, self.parser.CurrentLineNumber)
        if self.builder is not None:
            self.builder.start(tag, attrs)

    def _end(self, tag: str) -> None:
        if self.builder is None:
            return
        self.builder.end(tag)
        if tag == "cs-object":
            self.done.append((self.start[0], self.start[1], self.builder.close()))
            self.builder = None

    def _data(self, text: str) -> None:
        if self.builder is not None:
            self.builder.data(text)


def _text(element: ET.Element | None, tag: str) -> str | None:
    if element is None:
        return None
    for node in element.iter(tag):
        value = "".join(node.itertext()).strip()
        if value:
            return value
    return None


def _hologram(element: ET.Element) -> dict[str, str]:
    """First value of the interesting attributes, from any hologram or pending delta."""
    found: dict[str, str] = {}
    for attr in element.iter("attr"):
        name = attr.get("name")
        if name in _HOLOGRAM_ATTRS and name not in found:
            value = _text(attr, "value")
            if value:
                found[name] = value
    return found


def _detail_value(detail: ET.Element, key: str) -> str | None:
    """An error-detail field, written as an attribute or as a child element by various versions."""
    for node in detail.iter():
        if node.get(key):
            return node.get(key)
    return _text(detail, key)


def _row(element: ET.Element, detail: ET.Element, source: str, offset: int, line: int) -> dict[str, object]:
    literal = _text(detail, "error-literal")
    server = _text(detail, "server-error-detail")
    extra_text = _text(detail, "extra-error-details")
    texts = "\n".join(t for t in (literal, server, extra_text) if t)
    extra = extra_error_details(texts)
    holo = _hologram(element)
    attribute, value = split_attribute(texts)
    anchor = holo.get("sourceAnchor")
    # cloudAnchor is "User_<objectId>" on the AAD connector
    cloud_id = normalise_guid(holo.get("cloudAnchor", "").split("_", 1)[-1])
    object_id = extra.get("ObjectId") or cloud_id
    return {
        "time": parse_time(_detail_value(detail, "date-occurred"), "UTC"),
        "connector": element.get("ma-name") or _text(element, "ma-name"),
        "error_type": normalise_error_type(
            _text(detail, "error-name"), _detail_value(detail, "error-type"), text=texts
        ),
        "attribute": normalise_attribute(extra.get("AttributeConflictName") or attribute),
        "conflicting_value": extra.get("AttributeConflictValues") or value,
        "dn": holo.get("onPremisesDistinguishedName") or element.get("cs-dn"),
        "upn": holo.get("userPrincipalName"),
        "source_anchor": anchor,
        "object_guid": normalise_guid(holo.get("objectGUID")) or immutable_id_to_guid(anchor),
        "object_id": normalise_guid(object_id) or object_id,
        "error_text": texts or None,
        "tracking_id": tracking_id(texts),
        "export_format": "csexport_xml",
        "raw": ET.tostring(detail, encoding="unicode"),
        "source_file": source,
        "source_offset": offset,
        "line_number": line,
    }

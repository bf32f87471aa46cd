"""Windows events as XML: ``wevtutil qe /f:xml`` (a stream of ``<Event>`` elements without a
root), Event Viewer "Save as XML" (an ``<Events>`` root, often with ``RenderingInfo``), and the
``/f:RenderedXml`` form; namespaced or not, UTF-8 or UTF-16.

The file is read in bounded pieces and cut at ``<Event>`` elements, so memory stays flat on any
size and one malformed event is one reject: an element is parsed on its own (expat through
ElementTree), never the document as a whole.
"""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from parsers.base import FileBatch
from parsers.events_rows import Batcher
from parsers.events_schema import (
    EventsParser,
    clean_message,
    clip,
    event_data_text,
    put,
)

NAMESPACE = "http://schemas.microsoft.com/win/2004/08/events/event"
READ_BYTES = 1024 * 1024
#: An element longer than this without its end tag is given up on (and rejected).
MAX_ELEMENT_CHARS = 16 * 1024 * 1024

_START = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?Event(?=[\s/>])")
_END = re.compile(r"</(?:[A-Za-z_][\w.-]*:)?Event\s*>")
_ROOT = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?Events(?=[\s>])([^>]*)>")
# what may stand between events: declarations, comments, the <Events> root tags, blank space
_NOISE = re.compile(
    r"\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>|<(?:[A-Za-z_][\w.-]*:)?Events(?=[\s>])[^>]*>"
    r"|</(?:[A-Za-z_][\w.-]*:)?Events\s*>",
    re.S,
)


def _decode_head(head: bytes) -> str | None:
    for bom, encoding in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            body = head[len(bom) :]
            return body[: len(body) // 2 * 2].decode(encoding, errors="replace")
    if head[:1] == b"<" and head[1:2] == b"\x00":
        return head[: len(head) // 2 * 2].decode("utf-16-le", errors="replace")
    if b"\x00" in head[:4096]:
        return None
    return head.decode("utf-8-sig", errors="replace")


def _first_tag(text: str) -> str | None:
    pos = 0
    while True:
        m = _NOISE.match(text, pos)
        if m is None or m.end() == pos:
            break
        if not m.group(0).isspace() and _ROOT.match(m.group(0)):
            return "Events"
        pos = m.end()
    return "Event" if _START.match(text, pos) else None


def encoding_of(head: bytes) -> tuple[str, int]:
    """The file's encoding and the length of its byte order mark."""
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le", 2
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be", 2
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", 3
    if head[:1] == b"<" and head[1:2] == b"\x00":
        return "utf-16-le", 0
    return "utf-8", 0


def _errors(encoding: str) -> str:
    # both round-trip bad input exactly, so byte offsets stay exact after a bad sequence
    return "surrogateescape" if encoding == "utf-8" else "surrogatepass"


def byte_length(text: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(text) if text.isascii() else len(text.encode("utf-8", "surrogateescape"))
    return len(text.encode(encoding, "surrogatepass"))


@dataclass
class Piece:
    """A unit the XML stream was cut into: an event element, the root's start tag, or stray text."""

    text: str
    offset: int  # byte offset in the file
    line: int  # 1-based line of its first character
    kind: str  # "event", "root" or "stray"
    problem: str | None = None


class _Cursor:
    """Byte offset and line number of the next character of decoded text to be consumed."""

    def __init__(self, encoding: str, offset: int) -> None:
        self.encoding, self.offset, self.line = encoding, offset, 1

    def advance(self, text: str) -> None:
        self.offset += byte_length(text, self.encoding)
        self.line += text.count("\n")


def pieces(path: Path, read_bytes: int = READ_BYTES) -> Iterator[Piece]:
    """Cut the file into ``<Event>`` elements and stray text, with byte offsets and lines."""
    with path.open("rb") as f:
        encoding, bom = encoding_of(f.read(4))
        f.seek(bom)
        decoder = codecs.getincrementaldecoder(encoding)(_errors(encoding))
        cursor = _Cursor(encoding, bom)
        buf, eof = "", False
        while not eof or buf:
            if not eof:
                data = f.read(read_bytes)
                eof = not data
                try:
                    buf += decoder.decode(data, final=eof)
                except UnicodeDecodeError:  # an odd byte at the end of a UTF-16 file
                    buf += "\ufffd"
            done = 0
            for piece, upto in _cut(buf, eof, cursor):
                if piece is not None:
                    yield piece
                done = upto
            buf = buf[done:]
            if eof and buf:  # pragma: no cover - _cut consumes everything at the end
                buf = ""


def _cut(buf: str, eof: bool, cursor: _Cursor) -> Iterator[tuple[Piece | None, int]]:
    """Complete pieces of ``buf`` and how far each consumed it; stops where more text is needed."""
    cur = 0
    while True:
        start = _START.search(buf, cur)
        stop = len(buf) if start is None else start.start()
        if start is None and not eof:
            stop = max(cur, len(buf) - 64)  # a partial "<Eve" may end the buffer
        for piece in _stray(buf[cur:stop], cursor):
            yield piece, cur
        cursor.advance(buf[cur:stop])
        cur = stop
        if start is None:
            yield None, cur
            return
        end = _END.search(buf, start.end())
        following = _START.search(buf, start.end())
        broken = following is not None and (end is None or following.start() < end.start())
        if end is None and not broken and not eof and len(buf) - cur <= MAX_ELEMENT_CHARS:
            yield None, cur  # the element continues in the next read
            return
        if broken and following is not None:
            stop, why = following.start(), "the element has no </Event> end tag before the next <Event>"
        elif end is None:
            stop = len(buf)
            why = (
                "the element has no </Event> end tag (the file ends inside it)"
                if eof
                else f"the element runs past {MAX_ELEMENT_CHARS} characters without </Event>"
            )
        else:
            stop, why = end.end(), None
        yield Piece(buf[cur:stop], cursor.offset, cursor.line, "event", why), stop
        cursor.advance(buf[cur:stop])
        cur = stop


def _stray(text: str, cursor: _Cursor) -> Iterator[Piece]:
    """Text between events: XML furniture is passed over (the root's start tag is reported, for
    its namespace declarations); anything else is one stray piece."""
    if not text or text.isspace():
        return
    pos = 0
    while pos < len(text):
        m = _NOISE.match(text, pos)
        if m is not None and m.end() > pos:
            if _ROOT.match(m.group(0)):
                lead = text[:pos]
                yield Piece(m.group(0), *_at(cursor, lead), "root")
            pos = m.end()
            continue
        skipped = len(text[pos:]) - len(text[pos:].lstrip())
        lead = text[: pos + skipped]
        yield Piece(text[pos:].strip(), *_at(cursor, lead), "stray", "text outside any <Event> element")
        return


def _at(cursor: _Cursor, lead: str) -> tuple[int, int]:
    """Offset and line of the character after ``lead`` (text not yet consumed by ``cursor``)."""
    return cursor.offset + byte_length(lead, cursor.encoding), cursor.line + lead.count("\n")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _int(text: str | None) -> int | None:
    try:
        return int((text or "").strip(), 0) if text and text.strip() else None
    except ValueError:
        return None


def _text(elem: ET.Element | None) -> str | None:
    if elem is None:
        return None
    return (elem.text or "").strip() or None


def _children(elem: ET.Element | None) -> dict[str, ET.Element]:
    return {} if elem is None else {_local(c.tag): c for c in elem}


def _tree(elem: ET.Element, path: str, data: dict[str, str]) -> None:
    """Flatten an element the way ``flatten_json_event`` flattens the package's JSON of it."""
    for name, value in elem.attrib.items():
        put(data, f"{path}@{_local(name)}", event_data_text(value))
    children = list(elem)
    if children:
        for child in children:
            name = _local(child.tag)
            _tree(child, f"{path}.{name}" if path else name, data)
    elif path and ((elem.text is not None and elem.text.strip()) or not elem.attrib):
        put(data, path, event_data_text(elem.text))


def event_data(event: ET.Element) -> dict[str, str] | None:
    """``EventData``/``UserData`` as name -> text (same rules as for the evtx package's JSON)."""
    parts = _children(event)
    data: dict[str, str] = {}
    ed = parts.get("EventData")
    if ed is not None:
        position = 0
        for child in ed:
            name = _local(child.tag)
            if name == "Binary":
                if child.text and child.text.strip():
                    put(data, "Binary", child.text.strip())
                continue
            position += 1
            if name in ("Data", "ComplexData"):
                key = child.get("Name") or str(position)
                put(data, key, event_data_text(child.text))
            else:
                _tree(child, name, data)
    ud = parts.get("UserData")
    if ud is not None:
        for wrapper in ud:
            _tree(wrapper, "", data)
    return data or None


def event_row(event: ET.Element) -> dict[str, Any]:
    """The base ``events`` columns of one ``<Event>`` element."""
    parts = _children(event)
    system = _children(parts.get("System"))
    provider = system.get("Provider")
    event_id = system.get("EventID")
    execution = system.get("Execution")
    security = system.get("Security")
    created = system.get("TimeCreated")
    rendering = _children(parts.get("RenderingInfo"))
    keywords = rendering.get("Keywords")
    keyword_names = (
        [k.text.strip() for k in keywords if k.text and k.text.strip()] if keywords is not None else []
    )
    return {
        "time_text": created.get("SystemTime") if created is not None else None,
        "computer": _text(system.get("Computer")),
        "channel": _text(system.get("Channel")) or _text(rendering.get("Channel")),
        "provider": None
        if provider is None
        else (provider.get("Name") or provider.get("EventSourceName") or _text(rendering.get("Provider"))),
        "event_id": _int(_text(event_id)),
        "qualifiers": None if event_id is None else _int(event_id.get("Qualifiers")),
        "version": _int(_text(system.get("Version"))),
        "level": _int(_text(system.get("Level"))),
        "level_name": _text(rendering.get("Level")),
        "task": _int(_text(system.get("Task"))),
        "task_name": _text(rendering.get("Task")),
        "opcode": _int(_text(system.get("Opcode"))),
        "opcode_name": _text(rendering.get("Opcode")),
        "keywords": _text(system.get("Keywords")),
        "keyword_names": ", ".join(keyword_names) or None,
        "record_id": _int(_text(system.get("EventRecordID"))),
        "process_id": None if execution is None else _int(execution.get("ProcessID")),
        "thread_id": None if execution is None else _int(execution.get("ThreadID")),
        "user_sid": None if security is None else (security.get("UserID") or None),
        "message": clean_message(rendering["Message"].text) if "Message" in rendering else None,
        "event_data": event_data(event),
        "format": "xml",
    }


class WinEventXmlParser(EventsParser):
    """Windows events exported as XML (wevtutil, Event Viewer), namespaced or not."""

    name: ClassVar[str] = "winevent_xml"

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        text = _decode_head(head)
        if text is None or _first_tag(text.lstrip("\ufeff")) is None:
            return 0
        return 95 if NAMESPACE in text else 60

    def parse_file(self, path: Path, *, source: str, batch_records: int = 50_000) -> Iterator[FileBatch]:
        out = Batcher(batch_records)
        root_attrs = ""
        for piece in pieces(path):
            if piece.kind == "root":
                m = _ROOT.match(piece.text)
                root_attrs = m.group(1) if m else ""
                continue
            out.position = piece.offset + 1
            if piece.problem is not None:
                out.reject(self.name, source, piece.offset, piece.line, piece.problem, piece.text)
            else:
                try:
                    elem = _parse(piece.text, root_attrs)
                except ET.ParseError as exc:
                    out.reject(
                        self.name, source, piece.offset, piece.line, f"malformed XML: {exc}", piece.text
                    )
                else:
                    values = event_row(elem)
                    values["raw"] = clip(piece.text)
                    out.row(values, source, piece.offset, piece.line)
            if out.full():
                yield out.take()
        yield from out.last(path.stat().st_size)


def _parse(text: str, root_attrs: str) -> ET.Element:
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        if "unbound prefix" not in str(exc) or not root_attrs:
            raise
        # a prefix declared on the <Events> root: parse the element inside a copy of the root
        wrapper = ET.fromstring(f"<r{root_attrs}>{text}</r>")
        return wrapper[0]

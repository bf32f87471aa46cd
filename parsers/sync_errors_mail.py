"""The "Identity synchronization Error Report" e-mail Azure AD sends the technical contact.

Saved as ``.eml`` (MIME, possibly quoted-printable or HTML only) or as ``.txt`` (Outlook's "Save
as"). Each error line becomes one row: its error sentence is split into attribute and value
("... may already be associated with another object in your local directory services:
[ProxyAddresses smtp:john@contoso.com]" -> ``ProxyAddresses`` / ``smtp:john@contoso.com``), its
tab-separated cells (as the e-mail's table pastes) give the identity and object ids, and the
report's time comes from the row, the "last synchronization" line, the subject or the Date header.

Records are the error lines; the prose around them is not data. A table row (``User<TAB>...``)
without a recognisable error sentence is rejected, so a changed template shows up in ``rejects``.
Offsets are the line's byte offset in the file when it is stored as plain text, else an ordinal.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import html
import re
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import ClassVar

from parsers.base import Reject
from parsers.sync_errors_common import (
    RecordFileParser,
    immutable_id_to_guid,
    normalise_attribute,
    normalise_error_type,
    normalise_guid,
    parse_time,
    split_attribute,
    tracking_id,
)
from parsers.text import sniff_text

MAX_BYTES = 32 * 1024 * 1024
_MARKERS = re.compile(r"(?:Identity|Directory) synchroni[sz]ation error report", re.I)
_SENTENCE = re.compile(
    r"(Unable to (?:update|process|create|delete|provision) this object|"
    r"A synchronized object with the same|This synchronization operation|"
    r"Deleting a cloud-only object)",
    re.I,
)
_ROW_START = re.compile(r"^\s*(User|Group|Contact|Device)\t", re.I)
_HEADERS = re.compile(
    r"^(From|To|Cc|Sent|Date|Subject|MIME-Version|Content-Type|Received|Return-Path):", re.I
)
_WHEN_LINE = re.compile(
    r"(?:last synchroni[sz]ation attempt|errors? (?:reported|logged)(?: at)?|report time)\s*:?\s*(.+)$", re.I
)
_SUBJECT_TIME = re.compile(r"error report\s*:\s*(.+)$", re.I)
_BASE64_ID = re.compile(r"(?<![A-Za-z0-9+/])([A-Za-z0-9+/]{22}==)")
_GUID_TEXT = re.compile(r"\b([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\b")
_UPN = re.compile(r"\b([\w.'+-]+@[\w-]+(?:\.[\w-]+)+)\b")
_COLUMNS = {
    "identity": "identity",
    "userprincipalname": "identity",
    "upn": "identity",
    "objecttype": "object_type",
    "errordescription": "text",
    "error": "text",
    "description": "text",
    "onpremisesobjectid": "anchor",
    "sourceanchor": "anchor",
    "immutableid": "anchor",
    "objectid": "object_id",
    "attribute": "attribute",
    "value": "value",
    "time": "time",
    "lastsynchronizationtime": "time",
}


class SyncErrorMailParser(RecordFileParser):
    name: ClassVar[str] = "sync_error_mail"

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        text = sniff_text(head) or ""
        if _MARKERS.search(text) or ("MSOnlineServicesTeam@" in text and _SENTENCE.search(text)):
            return 92
        return 0

    def _items(self, path: Path, source: str) -> Iterator[dict[str, object] | Reject]:
        size = path.stat().st_size
        if size > MAX_BYTES:
            yield Reject(
                source, 0, None, self.name, f"e-mail of {size:,} bytes is over {MAX_BYTES:,}: not read", None
            )
            return
        raw = path.read_bytes()
        body, sent = _body(raw)
        report_time = sent
        columns: list[str] | None = None
        cursor, last = 0, -1
        for text in body.splitlines():
            line = text.strip("\r")
            when = _WHEN_LINE.search(line) or _SUBJECT_TIME.search(line)
            if when and not _SENTENCE.search(line):
                report_time = parse_time(when.group(1), self.options.timezone) or report_time
            cells = line.split("\t")
            keys = [re.sub(r"[\s_\-]", "", c).lower() for c in cells]
            if len(cells) > 1 and sum(k in _COLUMNS for k in keys) >= 2:
                columns = [_COLUMNS.get(k, k) for k in keys]
                continue
            is_error = bool(_SENTENCE.search(line))
            if not is_error and not _ROW_START.match(line):
                continue
            found = raw.find(line.encode("utf-8"), cursor) if line else -1
            if found >= 0:
                offset, number, cursor = found, raw.count(b"\n", 0, found) + 1, found + 1
            else:
                offset, number = last + 1, None
            last = offset
            if not is_error:
                yield Reject(
                    source,
                    offset,
                    number,
                    self.name,
                    "error table row without a recognised error description",
                    line,
                )
                continue
            yield self._row(line, columns, report_time, source, offset, number)

    def _row(
        self,
        line: str,
        columns: list[str] | None,
        report_time: dt.datetime | None,
        source: str,
        offset: int,
        number: int | None,
    ) -> dict[str, object]:
        cells = [c.strip() for c in line.split("\t")]
        named = dict(zip(columns, cells, strict=False)) if columns and len(cells) > 1 else {}
        text = named.get("text") or next((c for c in cells if _SENTENCE.search(c)), line.strip())
        rest = " ".join(c for c in cells if c != text)
        attribute, value = split_attribute(text)
        anchor = named.get("anchor") or _first(_BASE64_ID, rest)
        object_id = named.get("object_id") or _first(_GUID_TEXT, rest)
        identity = named.get("identity") or _first(_UPN, rest)
        guid = immutable_id_to_guid(anchor)
        return {
            "time": parse_time(named.get("time"), self.options.timezone)
            if named.get("time")
            else report_time,
            "connector": None,
            "error_type": normalise_error_type(text=text),
            "attribute": normalise_attribute(named.get("attribute") or attribute),
            "conflicting_value": named.get("value") or value,
            "dn": None,
            "upn": identity if identity and "@" in identity else None,
            "source_anchor": anchor or None,
            "object_guid": guid,
            "object_id": normalise_guid(object_id),
            "error_text": text,
            "tracking_id": tracking_id(line),
            "export_format": "sync_error_mail",
            "raw": line,
            "source_file": source,
            "source_offset": offset,
            "line_number": number,
        }


def _first(pattern: re.Pattern[str], text: str) -> str | None:
    m = pattern.search(text)
    return m.group(1) if m else None


def _body(raw: bytes) -> tuple[str, dt.datetime | None]:
    """The e-mail's text (plain part, else HTML turned into lines) and its Date header."""
    head = raw[:4096].decode("utf-8", errors="replace").lstrip("\ufeff")
    first = next((ln for ln in head.splitlines() if ln.strip()), "")
    if not _HEADERS.match(first):
        return raw.decode("utf-8-sig", errors="replace"), None
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    sent: dt.datetime | None = None
    date = msg.get("Date") or msg.get("Sent")
    if date:
        try:
            sent = parsedate_to_datetime(str(date)).astimezone(dt.UTC)
        except (TypeError, ValueError):
            sent = parse_time(str(date))
    subject = str(msg.get("Subject") or "")
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return raw.decode("utf-8", errors="replace"), sent
    content = part.get_content()
    if part.get_content_subtype() == "html":
        content = _html_text(content)
    return f"Subject: {subject}\n{content}", sent


def _html_text(markup: str) -> str:
    text = re.sub(r"(?is)<(script|style).*?</\1>", "", markup)
    text = re.sub(r"(?i)</t[dh]\s*>", "\t", text)
    text = re.sub(r"(?i)<br\s*/?>|</tr\s*>|</p\s*>|</div\s*>", "\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    lines = [html.unescape(ln).strip(" \t").replace("\xa0", " ") for ln in text.splitlines()]
    return "\n".join(re.sub(r"[ ]*\t[ \t]*", "\t", ln) for ln in lines)

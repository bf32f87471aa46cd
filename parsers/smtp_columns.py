"""The ``smtp`` table: typed protocol-log columns and the derived ones rules and people ask for.

Derived columns are pulled out of ``data`` and ``context`` with vectorised RE2 regexes (Arrow
compute), never a per-line Python loop: reply code and enhanced status, the nested reply that a
next hop gave (``Primary target IP address responded with: "451 5.7.3 ..."``), the TLS failure
reason, and the certificate a TLS handshake used. Rows that cannot hold a value get null.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from parsers.base import SOURCE_FIELDS, TIMESTAMP
from parsers.w3c_header import Layout
from parsers.w3c_tables import Column, Typed, null_if_empty, parse_timestamps, to_int

TABLE = "smtp"

SCHEMA = pa.schema(
    [
        pa.field("date_time", TIMESTAMP),
        pa.field("connector_id", pa.string()),
        pa.field("session_id", pa.string()),
        pa.field("sequence_number", pa.int64()),
        pa.field("local_endpoint", pa.string()),
        pa.field("local_ip", pa.string()),
        pa.field("local_port", pa.int32()),
        pa.field("remote_endpoint", pa.string()),
        pa.field("remote_ip", pa.string()),
        pa.field("remote_port", pa.int32()),
        pa.field("event", pa.string()),
        pa.field("data", pa.string()),
        pa.field("context", pa.string()),
        pa.field("direction", pa.string()),
        pa.field("reply_code", pa.int32()),
        pa.field("enhanced_status", pa.string()),
        pa.field("nested_reply", pa.string()),
        pa.field("nested_reply_code", pa.int32()),
        pa.field("nested_enhanced_status", pa.string()),
        pa.field("tls_error", pa.string()),
        pa.field("cert_subject", pa.string()),
        pa.field("cert_issuer", pa.string()),
        pa.field("cert_serial", pa.string()),
        pa.field("cert_thumbprint", pa.string()),
        pa.field("raw", pa.string()),
        *SOURCE_FIELDS,
    ]
)

#: "451 4.4.0 text", "250-SIZE", "220 host ready": RFC 5321 code, RFC 3463 enhanced status.
REPLY = r"^\s*(?P<code>[2-5][0-9]{2})(?:[ -]+(?P<status>[245]\.[0-9]{1,3}\.[0-9]{1,3}))?(?:[ -]|$)"
#: Exchange quotes the next hop's answer; blog copies of it carry typographic quotes.
NESTED = r"responded with: [\"“](?P<reply>[^\"”]*)[\"”]"
TLS_ERROR = r"TLS negotiation failed with error (?P<error>[A-Za-z0-9_.]+)"
#: A distinguished name: RDNs joined by ", "; a value may be quoted ("thawte, Inc.").
_RDN = r"[A-Za-z][A-Za-z0-9.]*=(?:\"[^\"]*\"|[^,\"])*?"
_DN = rf"{_RDN}(?:, ?{_RDN})*"
#: One-line certificate dump (Exchange 2013+): subject issuer serial thumbprint [dates] [names].
CERT_DUMP = (
    rf"^\s*(?P<subject>{_DN})\s+(?P<issuer>{_DN})\s+(?P<serial>[0-9A-Fa-f]+)\s+"
    r"(?P<thumbprint>[0-9A-Fa-f]{40})(?:\s|$)"
)
#: Context of a one-line dump: "Sending certificate Subject Issuer name Serial number Thumbprint ...".
CERT_CONTEXT = r"(?i)certificate\b.*\bthumbprint\b"
#: Exchange 2010 writes one certificate property per line, named by the context.
CERT_LINES = {
    "cert_subject": "Certificate subject",
    "cert_issuer": "Certificate issuer name",
    "cert_serial": "Certificate serial number",
    "cert_thumbprint": "Certificate thumbprint",
}

_NULL = pa.scalar(None, pa.string())


def _field(struct: Column, name: str) -> Column:
    return null_if_empty(pc.struct_field(struct, name))


def _only(mask: Column, values: Column) -> Column:
    """``values`` where ``mask`` holds, else null: regexes then skip most rows cheaply."""
    return pc.if_else(pc.fill_null(mask, False), values, _NULL)


def reply_parts(text: Column) -> tuple[Column, Column]:
    """(reply code as int32, enhanced status) at the start of each text, null where none."""
    found = pc.extract_regex(text, REPLY)
    return to_int(_field(found, "code"), pa.int32()), _field(found, "status")


class Distinct:
    """The distinct values of a column and, per row, which one it holds.

    Protocol logs repeat themselves (the same banner, EHLO reply, certificate dump and TLS
    remark in every session), so regexes run once per distinct text and are spread back to the
    rows with ``take``: several times faster than a regex per row, and never slower by much.
    """

    def __init__(self, column: Column) -> None:
        whole = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        encoded = pc.dictionary_encode(whole)
        self.values: pa.Array = encoded.dictionary
        self.indices: pa.Array = encoded.indices

    def rows(self, per_value: Column) -> Column:
        """Spread an array aligned with ``values`` back to one entry per row."""
        if per_value.null_count == len(per_value):  # the usual case of the rarer columns
            return pa.nulls(len(self.indices), per_value.type)
        return per_value.take(self.indices)


def _first(*columns: Column) -> Column:
    """Per row, the first non-null of ``columns`` (all-null ones cost nothing)."""
    useful = [col for col in columns if col.null_count < len(col)]
    if len(useful) <= 1:
        return useful[0] if useful else columns[0]
    return pc.coalesce(*useful)


def _found(text: Column, pattern: str, group: str, literal: str) -> Column:
    """``group`` of ``pattern`` in each text that contains ``literal`` (a cheap pre-filter)."""
    return _field(pc.extract_regex(_only(pc.match_substring(text, literal), text), pattern), group)


def split_endpoint(endpoint: Column) -> tuple[Column, Column]:
    """``10.0.0.5:25`` / ``[2001:db8::1]:25`` -> (ip, port) with string kernels (3x a regex's speed).

    A leading ``:`` makes every split yield two parts; it is cut off the host afterwards.
    """
    parts = pc.split_pattern(pc.binary_join_element_wise(":", endpoint, ""), ":", max_splits=1, reverse=True)
    port = to_int(pc.list_element(parts, 1), pa.int32())
    host = pc.utf8_slice_codeunits(pc.list_element(parts, 0), 1)
    host = pc.utf8_rtrim(pc.utf8_ltrim(host, "["), "]")
    return pc.if_else(pc.is_valid(port), null_if_empty(host), _NULL), port


def typed_smtp(columns: dict[str, pa.ChunkedArray], layout: Layout) -> Typed:
    """Typed and derived columns of SMTP protocol-log rows (everything but raw and source)."""
    data, context, event = columns["data"], columns["context"], columns["event"]
    ts, ok = parse_timestamps(columns["date_time"])
    out: dict[str, Column] = {"date_time": ts}
    out["connector_id"] = columns["connector_id"]
    out["session_id"] = columns["session_id"]
    out["sequence_number"] = to_int(columns["sequence_number"], pa.int64())
    for side in ("local", "remote"):
        endpoint = columns[f"{side}_endpoint"]
        ends = Distinct(endpoint)
        ip, port = split_endpoint(ends.values)
        out[f"{side}_endpoint"], out[f"{side}_ip"], out[f"{side}_port"] = (
            endpoint,
            ends.rows(ip),
            ends.rows(port),
        )
    out["event"], out["data"], out["context"] = event, data, context
    n = len(data)
    out["direction"] = (
        pa.nulls(n, pa.string()) if layout.direction is None else pa.repeat(layout.direction, n)
    )

    d, c = Distinct(data), Distinct(context)
    # the reply a line carries: at the start of data (a response line) or of context (a remark)
    code_d, status_d = (d.rows(x) for x in reply_parts(d.values))
    code_c, status_c = (c.rows(x) for x in reply_parts(c.values))
    from_data = pc.is_valid(code_d)
    out["reply_code"] = pc.if_else(from_data, code_d, code_c)
    out["enhanced_status"] = pc.if_else(from_data, status_d, status_c)

    literal = "responded with"
    nested = _first(
        d.rows(_found(d.values, NESTED, "reply", literal)), c.rows(_found(c.values, NESTED, "reply", literal))
    )
    out["nested_reply"] = nested
    out["nested_reply_code"], out["nested_enhanced_status"] = reply_parts(nested)
    literal = "TLS negotiation failed"
    out["tls_error"] = _first(
        c.rows(_found(c.values, TLS_ERROR, "error", literal)),
        d.rows(_found(d.values, TLS_ERROR, "error", literal)),
    )
    _certificate(out, event, d, c)
    return Typed(out, bad_time=~ok, time_text=columns["date_time"])


def _scatter(n: int, mask: pa.Array, values: Column) -> pa.Array:
    """A column of ``n`` nulls holding ``values`` at the rows where ``mask`` is true (in order)."""
    return pc.replace_with_mask(pa.nulls(n, pa.string()), mask, values)


def _certificate(out: dict[str, Column], event: Column, d: Distinct, c: Distinct) -> None:
    """cert_* columns from a one-line dump, or from Exchange 2010's one-property-per-line form.

    Certificate lines are a few in a thousand: their data is gathered, parsed, and scattered
    back, so the other rows cost one mask and no string copies.
    """
    n = len(event)
    starred = pc.fill_null(pc.equal(event, "*"), False)
    starred = starred.combine_chunks() if isinstance(starred, pa.ChunkedArray) else starred
    dump_rows = pc.and_(
        starred, c.rows(pc.fill_null(pc.match_substring_regex(c.values, CERT_CONTEXT), False))
    )
    which = d.indices.filter(dump_rows)  # distinct data text of each dump line
    texts = pc.unique(which)  # the same certificate is dumped in every session: parse it once
    dump = pc.extract_regex(d.values.take(texts), CERT_DUMP)
    back = pc.index_in(which, value_set=texts)
    for column in CERT_LINES:
        found = _field(dump, column.removeprefix("cert_")).take(back)
        out[column] = (
            _scatter(n, dump_rows, found) if found.null_count < len(found) else pa.nulls(n, pa.string())
        )
    label = c.rows(pc.index_in(c.values, value_set=pa.array(list(CERT_LINES.values()))))
    if label.null_count == n:
        return
    for i, column in enumerate(CERT_LINES):
        rows = pc.and_(starred, pc.fill_null(pc.equal(label, i), False))
        found = pc.utf8_trim_whitespace(d.values.take(d.indices.filter(rows)))
        out[column] = pc.replace_with_mask(out[column], rows, found)

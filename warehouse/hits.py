"""The ``hits`` table: what the rule engine found, and what the ticket dispatcher reads.

It lives here, not in ``rules/``, because both the rule engine (writer) and ``tickets/``
(reader) depend on it and ``tickets/`` may not import ``rules/``. Hits are append-only; the
dispatcher follows them by ``_version`` and keeps its own delivery state elsewhere.
"""

from __future__ import annotations

import pyarrow as pa

from parsers.base import TIMESTAMP

HITS_TABLE = "hits"

SAMPLE_TYPE = pa.struct(
    [
        pa.field("source_file", pa.string()),
        pa.field("source_offset", pa.int64()),
        pa.field("line_number", pa.int64()),
        pa.field("text", pa.string()),
    ]
)

HITS_SCHEMA = pa.schema(
    [
        # deterministic id: the same rows evaluated twice give the same hit_id (no new hit)
        pa.field("hit_id", pa.string(), nullable=False),
        pa.field("rule_id", pa.string(), nullable=False),
        pa.field("rule_title", pa.string(), nullable=False),
        pa.field("severity", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # "signature" (has a fix) or "detection" (Sigma)
        pa.field("table_name", pa.string(), nullable=False),
        pa.field("group_key", pa.string(), nullable=False),  # e.g. "connector=Outbound to Office 365"
        pa.field("dedup_key", pa.string(), nullable=False),  # default rule_id + "|" + group_key
        pa.field("first_seen", TIMESTAMP),
        pa.field("last_seen", TIMESTAMP),
        pa.field("count", pa.int64(), nullable=False),
        pa.field("samples", pa.list_(SAMPLE_TYPE), nullable=False),
        pa.field("fix_summary", pa.string()),
        pa.field(
            "fix_json", pa.string()
        ),  # {"summary", "causes": [{"cause","check","steps","commands"}], ...}
        pa.field("references", pa.list_(pa.string()), nullable=False),
        pa.field("query", pa.string()),  # the `knownfix query` SQL that shows every matching row
        pa.field("detected_at", TIMESTAMP, nullable=False),
    ]
)

"""Hits and the watermark that produced them go into ``hits`` in one commit.

The watermark of table T is the Delta app transaction ``rules:T`` on the ``hits`` table: written
with the hits, a crash never loses or repeats a hit. A hit id hashes the rows it covers, so ids
already stored are left out: evaluating the same rows again gives no new hits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from rules.snapshots import Snapshot
from warehouse.hits import HITS_SCHEMA, HITS_TABLE
from warehouse.store import Warehouse


def watermark_app_id(table: str) -> str:
    return f"rules:{table}"


def watermark(wh: Warehouse, table: str) -> int | None:
    """The version of ``table`` up to which rows were evaluated; None: none yet."""
    return wh.checkpoint(HITS_TABLE, watermark_app_id(table))


class HitsWriter:
    """Appends hits with a watermark; merges the small files of ``hits`` every ``compact_every`` writes.

    Every run appends to ``hits`` (its watermark at least), so weeks of tailing would otherwise
    leave a table of tens of thousands of files.
    """

    def __init__(self, wh: Warehouse, *, compact_every: int) -> None:
        self.wh = wh
        self.compact_every = compact_every
        self._writes = 0

    def write(self, table: str, to_version: int, hits: list[dict[str, Any]], check: Sequence[str]) -> int:
        """Append the hits whose id is not stored yet (only ids in ``check`` may be) and the
        watermark ``to_version`` of ``table``, in one commit (even with no hits); returns how many
        hits were written."""
        rows = pa.Table.from_pylist(hits, schema=HITS_SCHEMA) if hits else HITS_SCHEMA.empty_table()
        existing = self.wh.table(HITS_TABLE, refresh=True)
        if existing is not None and check:
            stored = Snapshot.of(existing, self.wh.table_path(HITS_TABLE)).dataset()
            seen = stored.to_table(
                columns=["hit_id"], filter=pc.field("hit_id").isin(pa.array(check, pa.string()))
            )
            if seen.num_rows:
                rows = rows.filter(pc.invert(pc.is_in(rows["hit_id"], value_set=seen["hit_id"])))
        self.wh.append(HITS_TABLE, rows, {watermark_app_id(table): to_version})
        self._writes += 1
        if self.compact_every and self._writes % self.compact_every == 0:
            self.wh.compact(HITS_TABLE)  # keeps rows, `_version` values and watermarks as they are
        return rows.num_rows

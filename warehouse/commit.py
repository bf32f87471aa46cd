"""Commit parsed batches so that every record lands exactly once, whatever crashes in between.

The protocol, for a batch of files each parsed up to a new position:

1. For each table the batch fills (data tables and ``rejects``), drop rows of file F whose
   ``source_offset`` is below that table's checkpoint for F (they were committed before a crash),
   then append the rest with checkpoint F = new position (or the old checkpoint, if that is
   further: a checkpoint never moves back), in one Delta commit per table.
2. Last, append one progress row per file to ``files`` with the same checkpoints.

A reader resumes a file at its ``files`` checkpoint. Whatever step a crash interrupts, the
re-parsed records that already reached a table are filtered by step 1, and those that did not are
written: no loss, no duplicate. Records that another file already brought (the same Windows log
exported twice) are dropped as copies (``warehouse.copies``). ``files`` also holds the per-batch
counts that reconcile (records read = rows + rejects + duplicates).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from parsers.base import REJECTS_TABLE, TIMESTAMP, ParseResult
from warehouse.copies import drop_copies
from warehouse.store import Warehouse

FILES_TABLE = "files"

FILES_SCHEMA = pa.schema(
    [
        pa.field("file_id", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("format", pa.string(), nullable=False),
        pa.field("start", pa.int64(), nullable=False),
        pa.field("position", pa.int64(), nullable=False),
        pa.field("size", pa.int64()),
        pa.field("records_read", pa.int64(), nullable=False),
        pa.field("rows", pa.int64(), nullable=False),
        pa.field("rejects", pa.int64(), nullable=False),
        pa.field("complete", pa.bool_(), nullable=False),
        pa.field("committed_at", TIMESTAMP, nullable=False),
        # identity evidence at ``position`` (see ingest.identity): digest of the first
        # ``fingerprint_bytes`` bytes and of the bytes just before ``position``
        pa.field("fingerprint", pa.string()),
        pa.field("fingerprint_bytes", pa.int64()),
        pa.field("tail_digest", pa.string()),
        # records that were copies of ones another file had already brought (warehouse.copies)
        pa.field("duplicates", pa.int64()),
    ]
)


@dataclass
class FileProgress:
    """Where one file stands after a batch: parsed ``[start, position)``."""

    file_id: str
    path: str
    format: str
    start: int
    position: int
    size: int | None = None
    complete: bool = False
    #: Identity evidence stored with the checkpoint, so a restart can tell a rotated copy, a
    #: truncated-and-regrown file and a different file with the same header apart.
    fingerprint: str | None = None
    fingerprint_bytes: int | None = None
    tail_digest: str | None = None


@dataclass
class CommitSummary:
    rows: dict[str, int] = field(default_factory=dict)
    rejects: int = 0
    duplicates: int = 0
    records_read: int = 0
    files: int = 0
    versions: dict[str, int] = field(default_factory=dict)

    @property
    def row_count(self) -> int:
        return sum(self.rows.values())


def resume_position(wh: Warehouse, file_id: str) -> int:
    """Where reading of ``file_id`` continues: its last committed position, else 0."""
    return wh.checkpoint(FILES_TABLE, file_id) or 0


def _unseen(rows: pa.Table, floor: int | None) -> pa.Table:
    """Rows not yet in their table; the common case (nothing to drop) costs no copy."""
    if floor is None or rows.num_rows == 0:
        return rows
    offsets = rows["source_offset"]
    if pc.min(offsets).as_py() >= floor:
        return rows
    return rows.filter(pc.greater_equal(offsets, pa.scalar(floor, pa.int64())))


def commit(wh: Warehouse, batch: list[tuple[FileProgress, ParseResult]]) -> CommitSummary:
    """Write a batch of parsed files with the protocol above; returns what was added."""
    summary = CommitSummary()
    per_table: dict[str, list[pa.Table]] = {}
    owners: dict[str, list[int]] = {}  # table -> index in ``batch`` of each of its pieces
    checkpoints: dict[str, dict[str, int]] = {}
    for index, (progress, result) in enumerate(batch):
        produced = dict(result.tables)
        if result.rejects.num_rows:
            produced[REJECTS_TABLE] = result.rejects
        for table, rows in produced.items():
            floor = wh.checkpoint(table, progress.file_id)
            per_table.setdefault(table, []).append(_unseen(rows, floor))
            owners.setdefault(table, []).append(index)
            marks = checkpoints.setdefault(table, {})
            # never lower: a file re-read after a crash, in smaller pieces than the table already
            # holds, would otherwise let the next piece's rows through the filter a second time
            marks[progress.file_id] = max(marks.get(progress.file_id, 0), progress.position, floor or 0)

    duplicates = [0] * len(batch)
    for table in sorted(per_table, key=lambda t: (t == REJECTS_TABLE, t)):
        pieces, copies = drop_copies(wh, table, per_table[table])
        for index, n in zip(owners[table], copies, strict=True):
            duplicates[index] += n
        summary.duplicates += sum(copies)
        rows = pa.concat_tables(pieces, promote_options="permissive")
        summary.versions[table] = wh.append(table, rows, checkpoints[table])
        if table == REJECTS_TABLE:
            summary.rejects += rows.num_rows
        else:
            summary.rows[table] = summary.rows.get(table, 0) + rows.num_rows

    now = dt.datetime.now(dt.UTC)
    progress_rows = pa.Table.from_pylist(
        [
            {
                "file_id": p.file_id,
                "path": p.path,
                "format": p.format,
                "start": p.start,
                "position": p.position,
                "size": p.size,
                "records_read": r.records_read,
                "rows": r.row_count - dup,
                "rejects": r.rejects.num_rows,
                "complete": p.complete,
                "committed_at": now,
                "fingerprint": p.fingerprint,
                "fingerprint_bytes": p.fingerprint_bytes,
                "tail_digest": p.tail_digest,
                "duplicates": dup,
            }
            for (p, r), dup in zip(batch, duplicates, strict=True)
        ],
        schema=FILES_SCHEMA,
    )
    marks = {}
    for p, _ in batch:
        marks[p.file_id] = max(marks.get(p.file_id, 0), p.position)
    summary.versions[FILES_TABLE] = wh.append(FILES_TABLE, progress_rows, marks)
    summary.records_read = sum(r.records_read for _, r in batch)
    summary.files = len({p.file_id for p, _ in batch})
    return summary

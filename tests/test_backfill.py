"""One-shot ingest: idempotent re-runs, resumption of grown files, batching, reconciliation."""

from __future__ import annotations

from pathlib import Path

from ingest.backfill import ingest_paths
from warehouse.query import run
from warehouse.store import Warehouse


def _count(wh: Warehouse, sql: str) -> int:
    return int(run(wh, sql).column(0)[0].as_py())


def test_rerun_adds_nothing_and_growth_adds_only_the_new_lines(tmp_path: Path, warehouse: Warehouse) -> None:
    tmp_path = tmp_path / "logs"
    tmp_path.mkdir()
    log = tmp_path / "setup.log"
    log.write_text("".join(f"step {i}\n" for i in range(2000)))
    first = ingest_paths(warehouse, [tmp_path])
    assert first.rows == {"lines": 2000}
    again = ingest_paths(warehouse, [tmp_path])
    assert again.row_count == 0 and again.records_read == 0
    with log.open("a") as f:
        f.write("".join(f"step {i}\n" for i in range(2000, 2500)))
    grown = ingest_paths(warehouse, [tmp_path])
    assert grown.rows == {"lines": 500}
    assert _count(warehouse, "select count(distinct text) from lines") == 2500
    assert _count(warehouse, "select max(line_number) from lines") == 2500


def test_many_small_files_share_commits_and_reconcile(tmp_path: Path, warehouse: Warehouse) -> None:
    tmp_path = tmp_path / "logs"
    tmp_path.mkdir()
    for i in range(120):
        (tmp_path / f"f{i:03}.txt").write_text(f"first {i}\nsecond {i}\n")
    (tmp_path / "bad.txt").write_bytes(b"ok line\n\xff\xfe broken utf8\n")
    stats = ingest_paths(warehouse, [tmp_path])
    assert stats.commits == 1  # all 121 files in one commit per table
    assert stats.records_read == 242 == stats.row_count + stats.rejects
    per_file = run(
        warehouse,
        """
        select f.path, sum(f.records_read) as read,
               (select count(*) from lines l where l.source_file = f.path) as rows,
               (select count(*) from rejects r where r.source_file = f.path) as rejects
        from files f group by f.path
        """,
    ).to_pylist()
    assert len(per_file) == 121
    assert all(r["read"] == r["rows"] + r["rejects"] for r in per_file)
    bad = run(warehouse, "select line_number, reason from rejects").to_pylist()
    assert bad == [{"line_number": 2, "reason": "line is not valid UTF-8"}]


def test_large_file_is_read_in_bounded_chunks(tmp_path: Path, warehouse: Warehouse) -> None:
    tmp_path = tmp_path / "logs"
    tmp_path.mkdir()
    log = tmp_path / "big.log"
    log.write_text("".join(f"entry {i:06}\n" for i in range(50_000)))  # 650 kB
    stats = ingest_paths(warehouse, [tmp_path], chunk_bytes=64 * 1024, batch_bytes=256 * 1024)
    assert stats.commits >= 2  # 650 kB in 256 kB batches: several commits, never one big one
    assert _count(warehouse, "select count(*) from lines") == 50_000
    assert _count(warehouse, "select count(distinct source_offset) from lines") == 50_000
    # offsets point at the lines' bytes
    data = log.read_bytes()
    row = run(warehouse, "select text, source_offset from lines where line_number = 31337").to_pylist()[0]
    assert data[row["source_offset"] :].startswith(row["text"].encode())


def test_a_failure_in_the_background_commit_reaches_the_caller(tmp_path: Path, warehouse: Warehouse) -> None:
    import pytest

    from warehouse.commit import CommitSummary

    logs = tmp_path / "logs"
    logs.mkdir()
    for i in range(3):
        (logs / f"f{i}.log").write_text("".join(f"{i} line {n}\n" for n in range(1000)))

    def broken_hook(summary: CommitSummary) -> None:
        raise RuntimeError("rules exploded")

    with pytest.raises(RuntimeError, match="rules exploded"):
        ingest_paths(warehouse, [logs], batch_bytes=1, after_commit=broken_hook)
    # the first batch landed before the hook failed; nothing after the failure was committed
    assert _count(warehouse, "select count(*) from lines") == 1000


def test_a_warehouse_inside_the_ingested_folder_is_not_read(tmp_path: Path) -> None:
    logs = tmp_path / "share"
    logs.mkdir()
    (logs / "app.log").write_text("one\ntwo\n")
    wh = Warehouse(logs / "knownfix-data")  # the default location when run inside the share
    from warehouse.lock import WriterLock

    with WriterLock(wh.root):
        ingest_paths(wh, [logs])
        again = ingest_paths(wh, [logs])
    assert again.files_seen == 1  # app.log only: none of the warehouse's own files
    assert _count(wh, "select count(*) from lines") == 2

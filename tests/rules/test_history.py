"""Window history kept between the runs of one evaluator gives the hits a read of the files gives."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ingest.backfill import ingest_paths
from rules.evaluator import Evaluator, watermark_app_id
from tests.rules.helpers import SEND_HEADER, load_only, rules_file, unknown_credentials
from tests.rules.test_evaluator import BURST, hits
from warehouse.hits import HITS_TABLE
from warehouse.store import Warehouse


def _append_and_evaluate(wh: Warehouse, log: Path, text: str, evaluator: Evaluator) -> None:
    with log.open("a") as f:
        f.write(text)
    ingest_paths(wh, [log], after_commit=lambda summary: evaluator.evaluate(list(summary.versions)))


def test_one_evaluator_counts_windows_from_kept_rows_and_reads_files_for_earlier_times(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    evaluator = Evaluator(warehouse, load_only(rules_file(tmp_path, BURST)))
    log = tmp_path / "SEND.LOG"
    _append_and_evaluate(
        warehouse, log, SEND_HEADER + "".join(unknown_credentials(s) for s in range(30)), evaluator
    )
    assert hits(warehouse) == []
    _append_and_evaluate(warehouse, log, "".join(unknown_credentials(s) for s in range(30, 45)), evaluator)
    found = hits(warehouse)
    assert [h["count"] for h in found] == [45]  # the first batch's 30 rows came from memory
    watermark = Warehouse(warehouse.root).checkpoint(HITS_TABLE, watermark_app_id("smtp"))
    start = dt.datetime(2016, 7, 19, 12, 12, 30, tzinfo=dt.UTC)
    kept = evaluator.history.covering("burst", watermark, start)
    assert kept is not None and kept.rows.num_rows == 45

    _append_and_evaluate(warehouse, log, unknown_credentials(30, minute=20), evaluator)
    assert len(hits(warehouse)) == 1  # seven minutes later: alone in its window
    # Rows written late, in the first minute again: older than what is kept, so the files are read.
    _append_and_evaluate(warehouse, log, "".join(unknown_credentials(s) for s in range(45, 60)), evaluator)
    found = hits(warehouse)
    assert sorted(h["count"] for h in found) == [45, 60]  # the late rows see the first 45 too

"""Views over warehouse tables exist in every query session once their tables do."""

from __future__ import annotations

from ingest.backfill import ingest_paths
from tests.conftest import SAMPLE_LOGS
from warehouse.query import run
from warehouse.store import Warehouse


def test_identity_views_appear_with_their_tables(warehouse: Warehouse) -> None:
    ingest_paths(warehouse, [SAMPLE_LOGS / "identity"])
    views = run(warehouse, "select view_name from duckdb_views() where not internal").column(0).to_pylist()
    assert "sync_error_events" not in views  # no events table yet: nothing to join
    ingest_paths(warehouse, [SAMPLE_LOGS / "windows"])
    views = run(warehouse, "select view_name from duckdb_views() where not internal").column(0).to_pylist()
    assert "sync_error_events" in views
    assert run(warehouse, "select count(*) from sync_error_events").num_rows == 1

"""DuckDB sessions over the warehouse: every Delta table is a view of a consistent snapshot.

A session never blocks the writer and never sees a half-written commit: each view reads the Delta
snapshot that was current when the session opened (DESIGN.md, "Storage").
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from warehouse.errors import QueryError
from warehouse.macros import MACROS
from warehouse.store import Warehouse
from warehouse.views import VIEW_BUILDERS


def connect(wh: Warehouse, *, tables: list[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a view per warehouse table and the knownfix macros."""
    con = duckdb.connect()  # without ICU, TIMESTAMPTZ shows as UTC
    for macro in MACROS:
        con.execute(macro)
    fresh = Warehouse(wh.root)  # a new snapshot, not the writer's cached one
    registered = []
    for name in tables if tables is not None else fresh.table_names():
        dt = fresh.table(name)
        if dt is not None:
            con.register(name, dt.to_pyarrow_dataset())
            registered.append(name)
    if tables is None:
        for build in VIEW_BUILDERS:
            build(con, registered)
    return con


def run(wh: Warehouse, sql: str, params: list[object] | None = None) -> pa.Table:
    """Run one statement and return its result as Arrow; DuckDB errors become ``QueryError``."""
    con = connect(wh)
    try:
        return con.sql(sql, params=params).to_arrow_table()
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        known = ", ".join(Warehouse(wh.root).table_names()) or "none yet (run knownfix ingest first)"
        raise QueryError(f"query failed: {first} (tables: {known})") from exc
    finally:
        con.close()

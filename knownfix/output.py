"""Printing Arrow results as a table, CSV, JSON or Parquet.

Arrow and the warehouse are imported where they are used: every command names ``Format`` in its
options, so this module is loaded by ``knownfix --help`` and must stay cheap to import.
"""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from knownfix.errors import KnownfixError

if TYPE_CHECKING:
    import pyarrow as pa

    from warehouse.store import Warehouse

MAX_CELL = 120


class Format(enum.StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def emit(result: pa.Table, fmt: Format, out: Path | None) -> None:
    """Write ``result`` to ``out`` (or stdout) in ``fmt``."""
    if fmt is Format.parquet:
        if out is None:
            raise KnownfixError("--format parquet needs --output FILE")
        import pyarrow.parquet as pq

        pq.write_table(result, out)
        return
    if fmt is Format.csv:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        sink = pa.BufferOutputStream()
        pacsv.write_csv(result, sink)
        _write(sink.getvalue().to_pybytes().decode("utf-8"), out)
        return
    if fmt is Format.json:
        text = "\n".join(json.dumps(row, default=str, ensure_ascii=False) for row in result.to_pylist())
        _write(text + ("\n" if text else ""), out)
        return
    console = Console(file=out.open("w", encoding="utf-8") if out else sys.stdout, width=None)
    table = Table(show_lines=False)
    for name in result.column_names:
        table.add_column(name, overflow="fold")
    for row in result.to_pylist():
        table.add_row(*(_cell(v) for v in row.values()))
    console.print(table)
    console.print(f"[dim]{result.num_rows} row{'s' if result.num_rows != 1 else ''}[/dim]")


def _write(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


def describe_tables(wh: Warehouse) -> pa.Table:
    """One row per table: name, rows, columns (the hidden ``_version`` left out)."""
    import pyarrow as pa

    from warehouse.query import connect
    from warehouse.store import VERSION_COLUMN

    names = wh.table_names()
    con = connect(wh)
    try:
        rows = []
        for name in names:
            count = con.execute(f'select count(*) from "{name}"').fetchone()
            cols = [c for c in con.sql(f'select * from "{name}" limit 0').columns if c != VERSION_COLUMN]
            rows.append({"table": name, "rows": count[0] if count else 0, "columns": ", ".join(cols)})
    finally:
        con.close()
    return pa.Table.from_pylist(
        rows, schema=pa.schema([("table", pa.string()), ("rows", pa.int64()), ("columns", pa.string())])
    )

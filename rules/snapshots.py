"""The table versions a run reads, and of each only the data files that may hold the rows wanted.

A run evaluates the version it took a snapshot of, never a newer one a concurrent commit made
since, or the watermark would pass rows never scanned. Tailing makes a file per commit, so the
file list with its Delta statistics is what keeps a query from opening every file of the table;
it is kept per version, so repeated runs over an unchanged table do not read the Delta log again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import DeltaTable

from rules.schema import TableSchema
from warehouse.store import VERSION_COLUMN, Warehouse

#: Delta statistics keep timestamps to the millisecond: a file's true max may lie this far above.
STATS_SLACK = dt.timedelta(milliseconds=1)


@dataclass
class Snapshot:
    """One version of a table and its data files with their Delta statistics.

    Tailing makes a file per commit, so a query reads only the files whose statistics say they
    may hold its rows (``_version`` and time ranges); the SQL still filters every row, so the
    pruning only drops files that provably hold none. Files without statistics are always read.
    """

    delta: DeltaTable
    root: Path
    version: int
    schema: pa.Schema
    files: pa.Table | None  # add actions (path, min/max stats); None: read through deltalake
    _whole: ds.Dataset | None = field(default=None, repr=False)

    @classmethod
    def of(cls, delta: DeltaTable, root: Path) -> Snapshot:
        schema = pa.schema(delta.schema().to_arrow())
        protocol = delta.protocol()
        plain = not protocol.reader_features and not delta.metadata().partition_columns
        files = pa.table(delta.get_add_actions(flatten=True)) if plain else None
        return cls(delta, root, delta.version(), schema, files)

    def dataset(
        self,
        *,
        versions: tuple[int | None, int | None] = (None, None),
        time: tuple[str | None, Any, Any] = (None, None, None),
    ) -> ds.Dataset:
        """The files that may hold rows with ``_version`` in ``(low, high]`` and time in ``[t0, t1]``."""
        if self.files is None:
            if self._whole is None:
                self._whole = self.delta.to_pyarrow_dataset()
            return self._whole
        keep = pa.array([True] * self.files.num_rows, pa.bool_())
        low, high = versions
        if low is not None:
            keep = pc.and_(keep, self._may(f"max.{VERSION_COLUMN}", pc.greater, low))
        if high is not None:
            keep = pc.and_(keep, self._may(f"min.{VERSION_COLUMN}", pc.less_equal, high))
        column, t0, t1 = time
        if column is not None and t0 is not None:
            keep = pc.and_(keep, self._may(f"max.{column}", pc.greater_equal, t0 - STATS_SLACK))
        if column is not None and t1 is not None:
            keep = pc.and_(keep, self._may(f"min.{column}", pc.less_equal, t1 + STATS_SLACK))
        paths = [str(self.root / unquote(p)) for p in self.files.filter(keep).column("path").to_pylist()]
        fmt = ds.ParquetFileFormat(
            default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=True)
        )
        return ds.dataset(paths, schema=self.schema, format=fmt)

    def _may(self, stat: str, op: Any, value: Any) -> pa.Array:
        """Per file: whether the statistic allows a match (a missing statistic always does)."""
        assert self.files is not None
        if stat not in self.files.column_names:
            return pa.array([True] * self.files.num_rows, pa.bool_())
        values = self.files.column(stat)
        try:
            bound = pa.scalar(value, values.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            return pa.array([True] * self.files.num_rows, pa.bool_())
        return pc.fill_null(op(values, bound), True)


class TableSnapshots:
    """The snapshot of each table an evaluator reads, with its schema, kept while the version stands."""

    def __init__(self, wh: Warehouse) -> None:
        self.wh = wh
        self._tables: dict[str, tuple[Snapshot, TableSchema]] = {}

    def refresh(self, names: Iterable[str]) -> dict[str, TableSchema]:
        """Each table's columns as stored (a header-driven table has the columns its logs gave).

        A table whose version has not moved keeps its snapshot (``rules test``: one run per example).
        """
        found = {}
        for name in sorted(names):
            delta = self.wh.table(name, refresh=True) if self.wh.has_table(name) else None
            if delta is None:
                continue
            cached = self._tables.get(name)
            if cached is None or cached[0].version != delta.version():
                snap = Snapshot.of(delta, self.wh.table_path(name))
                cached = self._tables[name] = (snap, TableSchema(name, snap.schema))
            found[name] = cached[1]
        return found

    def version(self, table: str) -> int | None:
        """The version a run over ``table`` evaluates; None for a table never refreshed."""
        cached = self._tables.get(table)
        return None if cached is None else cached[0].version

    def register(
        self,
        con: duckdb.DuckDBPyConnection,
        alias: str,
        table: str,
        *,
        versions: tuple[int | None, int | None] = (None, None),
        span: tuple[Any, Any] = (None, None),
    ) -> str:
        """Register as ``alias`` the files of ``table``'s snapshot that may hold the rows wanted."""
        snap, schema = self._tables[table]
        con.register(alias, snap.dataset(versions=versions, time=(schema.time_column, *span)))
        return alias

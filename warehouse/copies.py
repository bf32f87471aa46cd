"""Rows that repeat an event another file already brought: the same log exported twice.

Admins export a Windows log again and again, and each export holds the events of the one before.
A table with a natural key (``TABLE_KEYS``) keeps one row per key: a row whose key a *different*
file already brought, to the table or earlier in the same commit, is a copy. Copies are dropped
and counted (``files.duplicates``), so records read = rows + rejects + duplicates still holds,
and a rule does not count one failure twice. Rows of one file are never copies of each other:
re-reads after a crash are the commit protocol's business, and a file may truly hold a record
twice (a log with copied chunks). Rows with a null key column never match.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds

from parsers.events_schema import EVENTS_KEY, EVENTS_TABLE
from warehouse.store import Warehouse


@dataclass(frozen=True)
class NaturalKey:
    """The columns that identify one record across files."""

    columns: tuple[str, ...]


TABLE_KEYS: dict[str, NaturalKey] = {EVENTS_TABLE: NaturalKey(EVENTS_KEY)}


def drop_copies(wh: Warehouse, table: str, pieces: list[pa.Table]) -> tuple[list[pa.Table], list[int]]:
    """``pieces`` (one per file and batch, in commit order) without copies, and each one's count."""
    natural = TABLE_KEYS.get(table) if wh.merge_copies else None
    if natural is None or not any(_keyed(p, natural.columns) for p in pieces):
        return pieces, [0] * len(pieces)
    key = natural.columns
    candidates = pa.concat_tables(
        [
            p.select([*key, "source_file"])
            .append_column("__piece", pa.repeat(pa.scalar(i, pa.int32()), p.num_rows))
            .append_column("__row", pa.array(np.arange(p.num_rows, dtype=np.int64)))
            for i, p in enumerate(pieces)
            if _keyed(p, key)
        ],
        promote_options="permissive",
    )
    # a null never equals anything, so rows without a full key never match
    same = " and ".join(f"a.{k} = b.{k}" for k in key) + " and a.source_file <> b.source_file"
    parts = []
    if pc.count_distinct(candidates["source_file"]).as_py() > 1:  # an earlier file of this commit
        parts.append(
            f"select b.__piece, b.__row from batch b join batch a on {same} and a.__piece < b.__piece"
        )
    stored = wh.table(table)
    if stored is not None:  # only the stored rows that could match are read
        parts.append(
            f"""select b.__piece, b.__row from batch b join (
                select {", ".join(key)}, source_file from stored
            ) a on {same}"""
        )
    if not parts:
        return pieces, [0] * len(pieces)
    con = duckdb.connect()
    try:
        con.register("batch", candidates)
        if stored is not None:
            con.register("stored", stored.to_pyarrow_dataset().filter(_could_match(candidates, key)))
        union = " union all ".join(parts)
        found = con.sql(f"select distinct __piece, __row from ({union})").to_arrow_table()
    finally:
        con.close()
    if found.num_rows == 0:
        return pieces, [0] * len(pieces)
    kept, counts = [], []
    which = found["__piece"].to_numpy()
    rows = found["__row"].to_numpy()
    for i, piece in enumerate(pieces):
        drop = rows[which == i]
        counts.append(len(drop))
        if len(drop):
            mask = np.ones(piece.num_rows, dtype=bool)
            mask[drop] = False
            piece = piece.filter(pa.array(mask))
        kept.append(piece)
    return kept, counts


def _could_match(candidates: pa.Table, key: tuple[str, ...]) -> pds.Expression:
    """Stored rows whose key columns lie within the batch's: a range for numbers and times, the
    set of values for texts. Pushed into the scan, it lets whole files and row groups be skipped."""
    condition = pds.scalar(True)
    for name in key:
        column = candidates[name]
        if pa.types.is_string(column.type):
            condition &= pds.field(name).isin(pc.unique(column).drop_null())
        else:
            lo, hi = pc.min_max(column).values()
            condition &= (pds.field(name) >= lo) & (pds.field(name) <= hi)
    return condition


def _keyed(piece: pa.Table, key: tuple[str, ...]) -> bool:
    return piece.num_rows > 0 and all(k in piece.column_names for k in key)

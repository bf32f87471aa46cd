"""Incremental evaluation: the rows committed since the last run, all rules of a table in one scan.

The watermark of table T is written in the same commit as the hits it produced (``watermark``),
so a crash never loses or repeats a hit. Thresholds and correlations look back at
already-evaluated rows inside their window (the warehouse keeps every row), so windows carry
across batches without any state of our own. A hit's id hashes the rows it covers
(``hit_rows``), so re-evaluating the same rows gives no new hits.

The pieces: ``applicable`` picks the rules a table's stored columns allow, ``snapshots`` fixes
the table version a run reads and the files it opens, ``scan`` writes the SQL, ``history``
keeps window rows between runs; this module runs them in order over each table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from rules import applicable, scan
from rules.compiler import prefilter
from rules.errors import RuleEvalError
from rules.history import History, Kept
from rules.hit_rows import HitRows, hit_id
from rules.loader import RuleSet
from rules.model import Rule
from rules.schema import TableSchema
from rules.snapshots import TableSnapshots
from rules.watermark import HitsWriter, watermark, watermark_app_id
from warehouse.macros import MACROS
from warehouse.store import Warehouse

#: ``hit_id`` and ``watermark_app_id`` live in their own modules; other code imports them from here.
__all__ = ["Evaluator", "TableRun", "hit_id", "watermark_app_id"]

#: Names under which a run registers the files it reads (new rows, window history, pair sides).
_DATASETS = ("__new", "__hist", "__seed", "__a", "__b")


@dataclass
class TableRun:
    """What one evaluation of one table did."""

    table: str
    after_version: int | None  # rows with _version above this were evaluated (None: from the start)
    to_version: int
    candidates: int = 0
    hits: list[dict[str, Any]] = field(default_factory=list)
    written: int = 0
    #: Hits another table's run may have stored already (a pair across two tables is found from
    #: either side). Every other hit names a version above the watermark: no run has seen it.
    may_repeat: set[str] = field(default_factory=set)


def _arrow(con: duckdb.DuckDBPyConnection, query: str, params: list[Any]) -> pa.Table:
    result = con.sql(query, params=params).to_arrow_table()
    assert result is not None
    return result


def _span(
    m: pa.Table, time_column: str | None, flags: Sequence[str], *, times: bool = False
) -> tuple[Any, Any] | None:
    """None when no candidate passes any of ``flags``; else, with ``times``, the (min, max) of
    their time (None, None when all are null), computed in Arrow: no query per rule."""
    mask = pc.fill_null(m.column(flags[0]), False)
    for f in flags[1:]:
        mask = pc.or_(mask, pc.fill_null(m.column(f), False))
    if not pc.any(mask).as_py():
        return None
    if not times:
        return (None, None)
    if time_column is None or time_column not in m.column_names:
        raise RuleEvalError("a threshold or correlation needs a time column")
    bounds = pc.min_max(pc.filter(m.column(time_column), mask)).as_py()
    return (bounds["min"], bounds["max"])


class Evaluator:
    """Evaluates a rule set over a warehouse; one instance per process is enough."""

    def __init__(self, wh: Warehouse, rules: RuleSet, *, compact_hits_every: int = 200) -> None:
        # An instance of our own: ingest may run us on another thread while it keeps committing
        # through ``wh``, and Delta table objects are not shared between threads.
        self.wh = Warehouse(wh.root)
        self.rules = rules
        self.schemas: dict[str, TableSchema] = {}
        self.snapshots = TableSnapshots(self.wh)
        self.hit_rows = HitRows()
        self.hits_writer = HitsWriter(self.wh, compact_every=compact_hits_every)
        self._con: duckdb.DuckDBPyConnection | None = None
        self.history = History()
        self._fresh: dict[str, pa.Table] = {}  # this run's matching rows per threshold rule

    def evaluate(
        self,
        tables: Iterable[str] | None = None,
        *,
        write: bool = True,
        rescan: bool = False,
        source_files: Sequence[str] | None = None,
        only: Sequence[str] | None = None,
    ) -> list[TableRun]:
        """Evaluate new rows of ``tables`` (default: every table with rules) and store the hits.

        ``rescan`` ignores the watermark (hits already stored are still not repeated);
        ``source_files`` and ``only`` (rule ids) narrow a run, e.g. to one rule's example.
        """
        wanted = set(self.rules.tables()) | {
            self._partner(r).table for r in applicable.correlated(self.rules)
        }
        names = sorted(wanted if tables is None else wanted & set(tables))
        runs = []
        self.schemas = self.snapshots.refresh(wanted)
        for name in names:
            if name in self.schemas:
                run = self._evaluate_table(name, write=write, rescan=rescan, scope=source_files, only=only)
                if run is not None:
                    runs.append(run)
        return runs

    # --- one table ------------------------------------------------------------------------

    def _applies(self, rule: Rule) -> bool:
        return applicable.applies(rule, self.rules, self.schemas)

    def _partner(self, rule: Rule) -> Rule:
        return applicable.partner(self.rules, rule)

    def _evaluate_table(
        self,
        table: str,
        *,
        write: bool,
        rescan: bool,
        scope: Sequence[str] | None,
        only: Sequence[str] | None,
    ) -> TableRun | None:
        # The version evaluated is the one of the snapshot the scan reads, never a newer one that
        # a concurrent commit made since: otherwise the watermark would pass rows never scanned.
        current = self.snapshots.version(table)
        if current is None:
            return None
        after = None if rescan else watermark(self.wh, table)
        if after is not None and after >= current:
            return None
        own = [r for r in self.rules.for_table(table) if (only is None or r.id in only) and self._applies(r)]
        completing = [
            r
            for r in applicable.correlated(self.rules)
            if self._partner(r).table == table and (only is None or r.id in only) and self._applies(r)
        ]
        run = TableRun(table, after, current)
        con = self._connect()
        self.history.begin()
        self._fresh = {}
        try:
            if own or completing:
                self._scan(con, run, own, completing, scope)
        except duckdb.Error as exc:
            raise RuleEvalError(f"evaluating rules over {table} failed: {str(exc).splitlines()[0]}") from exc
        finally:
            for name in ("__m", *_DATASETS):  # free this run's data; the session stays
                con.unregister(name)
        if write:
            self._write(run)
            schema = self.schemas[table]
            if scope is None and schema.time_column:  # the watermark moved: the kept rows follow it
                windows = {r.id: r.threshold.window for r in own if r.threshold is not None}
                self.history.commit(run.to_version, self._fresh, schema.time_column, windows)
        return run

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """The evaluator's DuckDB session (made once); each query registers the files it reads."""
        con = self._con
        if con is None:
            con = self._con = duckdb.connect()
            for macro in MACROS:
                con.execute(macro)
        return con

    def _scan(
        self,
        con: duckdb.DuckDBPyConnection,
        run: TableRun,
        own: list[Rule],
        completing: list[Rule],
        scope: Sequence[str] | None,
    ) -> None:
        schema = self.schemas[run.table]
        partners = {self._partner(r).id: self._partner(r) for r in completing}
        scanned = own + [p for p in partners.values() if p not in own]
        conditions = [r.match for r in scanned]
        where = scan.scope_filter(scope)
        low = -1 if run.after_version is None else run.after_version
        fresh = self.snapshots.register(con, "__new", run.table, versions=(run.after_version, None))
        first = scan.stage1(fresh, scan.needed_columns(schema, scanned), prefilter(conditions, schema), where)
        m = _arrow(con, scan.stage2(first, conditions, schema), [low, run.to_version])
        run.candidates = m.num_rows
        flag = {r.id: f"__m{i}" for i, r in enumerate(scanned)}
        for rule in own:
            if rule.threshold is not None and rule.correlate is None and scope is None:
                self._keep(rule, schema, run, m, flag[rule.id])
        if m.num_rows == 0:
            return
        con.register("__m", m)
        for rule in own:
            # A rule none of whose candidates match has nothing to report: no query for it.
            if rule.correlate is not None or _span(m, schema.time_column, [flag[rule.id]]) is None:
                continue
            if rule.threshold is not None:
                run.hits.extend(self._threshold(con, rule, schema, run, m, flag[rule.id], where))
            else:
                shape = scan.Shape(schema, tuple(rule.group_by))
                rows = con.sql(scan.plain(shape, flag[rule.id])).to_arrow_table().to_pylist()
                run.hits.extend(self.hit_rows.hit(rule, schema, row, [run.table, row["__v"]]) for row in rows)
        for rule in {r.id: r for r in own + completing if r.correlate is not None}.values():
            partner = self._partner(rule)
            flag_a = flag.get(rule.id) if rule.table == run.table else None
            flag_b = flag.get(partner.id) if partner.table == run.table else None
            run.hits.extend(self._correlate(con, rule, run, m, flag_a, flag_b, scope))

    def _threshold(
        self,
        con: duckdb.DuckDBPyConnection,
        rule: Rule,
        schema: TableSchema,
        run: TableRun,
        m: pa.Table,
        flag: str,
        where: str,
    ) -> list[dict[str, Any]]:
        assert rule.threshold is not None
        t = rule.threshold
        shape = scan.Shape(schema, tuple(rule.group_by), t.distinct)
        span = _span(m, schema.time_column, [flag], times=True)
        if span is None or span[0] is None:
            return []
        history, params = None, []
        if run.after_version is not None:
            start = span[0] - dt.timedelta(seconds=t.window)
            kept = self.history.covering(rule.id, run.after_version, start) if where == "TRUE" else None
            if kept is None:  # read from the files; from now on this process keeps the rows
                seed = self.snapshots.register(
                    con, "__seed", run.table, versions=(None, run.after_version), span=(start, None)
                )
                sql = scan.history_rows(seed, scan.window_columns(schema, rule), rule.match, schema)
                kept = Kept(run.after_version, start, _arrow(con, sql, [run.after_version, start]))
                if where == "TRUE":
                    self.history.base(rule.id, kept)
            con.register("__hist", kept.rows)
            history = scan.lookback("__hist", rule.match, shape, where)
            params = [run.after_version, start, span[1]]
        query = scan.threshold(shape, flag, history, t.count, t.window)
        rows = _arrow(con, query, params).to_pylist()
        return [self.hit_rows.hit(rule, schema, row, [run.table, row["__v"]]) for row in rows]

    def _keep(self, rule: Rule, schema: TableSchema, run: TableRun, m: pa.Table, flag: str) -> None:
        """This run's matching rows of a threshold rule, and the history they extend."""
        columns = scan.window_columns(schema, rule)
        fresh = m.filter(pc.fill_null(m.column(flag), False)).select(columns)
        self._fresh[rule.id] = fresh
        if run.after_version is None:  # every row up to the snapshot is in this run
            self.history.base(rule.id, Kept(-1, None, fresh.slice(0, 0)))
        else:
            self.history.carry(rule.id, run.after_version)

    def _correlate(
        self,
        con: duckdb.DuckDBPyConnection,
        rule: Rule,
        run: TableRun,
        m: pa.Table,
        flag_a: str | None,
        flag_b: str | None,
        scope: Sequence[str] | None,
    ) -> list[dict[str, Any]]:
        """Pairs (A then B within the window) in which a row of this run is new."""
        assert rule.correlate is not None
        partner = self._partner(rule)
        a_schema, b_schema = self.schemas[rule.table], self.schemas[partner.table]
        within = rule.correlate.within
        flags = [f for f in (flag_a, flag_b) if f is not None]
        span = _span(m, self.schemas[run.table].time_column, flags, times=True)
        if span is None or span[0] is None:
            return []
        gap = dt.timedelta(seconds=within)
        low, high = span[0] - gap, span[1] + gap
        where = scan.scope_filter(scope)
        on = tuple(rule.correlate.on)
        a_from = self.snapshots.register(con, "__a", rule.table, span=(low, high))
        b_from = self.snapshots.register(con, "__b", partner.table, span=(low, high))
        a_sql = scan.side(a_from, rule.match, scan.Shape(a_schema, tuple(rule.group_by), None, on), where)
        b_sql = scan.side(b_from, partner.match, scan.Shape(b_schema, (), None, on), where)
        after = -1 if run.after_version is None else run.after_version
        new_a = f"a.__v > {int(after)}" if rule.table == run.table else "FALSE"
        new_b = f"b.__v > {int(after)}" if partner.table == run.table else "FALSE"
        query = scan.pairs(
            scan.Shape(a_schema, tuple(rule.group_by), None, on), b_sql, a_sql, within, new_a, new_b
        )
        rows = _arrow(con, query, [low, high, low, high]).to_pylist()
        hits = []
        for row in rows:
            order = sorted(row["sa"], key=lambda s: (s["source_file"], s["source_offset"]))
            after_rows = sorted(row["sb"], key=lambda s: (s["source_file"], s["source_offset"]))
            row["samples"] = order[:3] + after_rows[: scan.MAX_SAMPLES - min(3, len(order))]
            hits.append(
                self.hit_rows.hit(rule, a_schema, row, [rule.table, row["__v"], partner.table, row["__vb"]])
            )
        if partner.table != rule.table:
            run.may_repeat.update(h["hit_id"] for h in hits)
        return hits

    def _write(self, run: TableRun) -> None:
        """Append new hits and the watermark in one commit (the watermark even with no hits)."""
        # Only a run from the start, or a pair found from its other table, may find a stored hit.
        check = [h["hit_id"] for h in run.hits if run.after_version is None or h["hit_id"] in run.may_repeat]
        run.written = self.hits_writer.write(run.table, run.to_version, run.hits, check)

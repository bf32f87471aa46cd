"""Incremental evaluation: the rows committed since the last run, all rules of a table in one scan.

The watermark of table T is the Delta app transaction ``rules:T`` on the ``hits`` table; it is
written in the same commit as the hits it produced, so a crash never loses or repeats a hit.
Thresholds and correlations look back at already-evaluated rows inside their window (the
warehouse keeps every row), so windows carry across batches without any state of our own.

A hit covers the rows of one group key in one table version (a version pair for correlations);
its id hashes exactly that, so re-evaluating the same rows gives the same ids and ids already
in ``hits`` are skipped: no new hits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from rules import scan
from rules.compiler import compile_condition, group_filter, prefilter, pretty
from rules.errors import RuleEvalError
from rules.history import History, Kept
from rules.loader import RuleSet
from rules.model import Rule, field_tests
from rules.schema import TableSchema, UnknownFieldError
from warehouse.hits import HITS_SCHEMA, HITS_TABLE
from warehouse.macros import MACROS
from warehouse.store import Warehouse

#: Names under which a run registers the files it reads (new rows, window history, pair sides).
_DATASETS = ("__new", "__hist", "__seed", "__a", "__b")


def watermark_app_id(table: str) -> str:
    return f"rules:{table}"


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


def _resolves(schema: TableSchema, name: str) -> bool:
    try:
        schema.resolve(name)
    except UnknownFieldError:
        return False
    return True


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


def hit_id(rule_id: str, group_key: str, parts: Sequence[object]) -> str:
    text = "\x1f".join([rule_id, group_key, *(str(p) for p in parts)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Evaluator:
    """Evaluates a rule set over a warehouse; one instance per process is enough."""

    def __init__(self, wh: Warehouse, rules: RuleSet, *, compact_hits_every: int = 200) -> None:
        # An instance of our own: ingest may run us on another thread while it keeps committing
        # through ``wh``, and Delta table objects are not shared between threads.
        self.wh = Warehouse(wh.root)
        self.rules = rules
        self.schemas: dict[str, TableSchema] = {}
        self._queries: dict[tuple[str, str], str] = {}
        self._fixes: dict[str, tuple[str, str]] = {}
        self._snapshots: dict[str, tuple[int, scan.Snapshot, TableSchema]] = {}
        self._con: duckdb.DuckDBPyConnection | None = None
        self.history = History()
        self._fresh: dict[str, pa.Table] = {}  # this run's matching rows per threshold rule
        #: Every run appends to ``hits`` (its watermark at least): merge the small files now and
        #: then, or weeks of tailing leave a table of tens of thousands of files.
        self.compact_hits_every = compact_hits_every
        self._hits_writes = 0

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
        wanted = set(self.rules.tables()) | {self._partner(r).table for r in self._correlated()}
        names = sorted(wanted if tables is None else wanted & set(tables))
        runs = []
        self.schemas = self._warehouse_schemas(wanted)
        for name in names:
            if name in self.schemas:
                run = self._evaluate_table(name, write=write, rescan=rescan, scope=source_files, only=only)
                if run is not None:
                    runs.append(run)
        return runs

    # --- one table ------------------------------------------------------------------------

    def _warehouse_schemas(self, names: Iterable[str]) -> dict[str, TableSchema]:
        """Each table's columns as stored (a header-driven table has the columns its logs gave).

        The snapshot of each table version (its file list) is kept, so repeated runs over an
        unchanged table (``rules test``: one run per example) do not read the Delta log again.
        """
        found = {}
        for name in sorted(names):
            delta = self.wh.table(name, refresh=True) if self.wh.has_table(name) else None
            if delta is None:
                continue
            cached = self._snapshots.get(name)
            if cached is None or cached[0] != delta.version():
                snap = scan.Snapshot.of(delta, self.wh.table_path(name))
                cached = self._snapshots[name] = (snap.version, snap, TableSchema(name, snap.schema))
            found[name] = cached[2]
        return found

    def _applies(self, rule: Rule) -> bool:
        """Whether every field the rule names exists in its table (and its partner's) as stored."""
        schema = self.schemas.get(rule.table)
        if schema is None:
            return False
        names = [t.field for t in field_tests(rule.match)] + list(rule.group_by)
        if rule.threshold and rule.threshold.distinct:
            names.append(rule.threshold.distinct)
        if rule.correlate is not None:
            partner = self._partner(rule)
            if not self._applies(partner):
                return False
            names.extend(rule.correlate.on)
            if not all(_resolves(self.schemas[partner.table], n) for n in rule.correlate.on):
                return False
        return all(_resolves(schema, n) for n in names)

    def _correlated(self) -> list[Rule]:
        return [r for r in self.rules.active if r.correlate is not None]

    def _partner(self, rule: Rule) -> Rule:
        assert rule.correlate is not None
        return self.rules.get(rule.correlate.followed_by)

    def _evaluate_table(
        self,
        table: str,
        *,
        write: bool,
        rescan: bool,
        scope: Sequence[str] | None,
        only: Sequence[str] | None,
    ) -> TableRun | None:
        snapshot = self._snapshots.get(table)
        if snapshot is None:
            return None
        # The version evaluated is the one of the snapshot the scan reads, never a newer one that
        # a concurrent commit made since: otherwise the watermark would pass rows never scanned.
        current = snapshot[0]
        after = None if rescan else self.wh.checkpoint(HITS_TABLE, watermark_app_id(table))
        if after is not None and after >= current:
            return None
        own = [r for r in self.rules.for_table(table) if (only is None or r.id in only) and self._applies(r)]
        completing = [
            r
            for r in self._correlated()
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

    def _files(
        self,
        con: duckdb.DuckDBPyConnection,
        alias: str,
        table: str,
        *,
        versions: tuple[int | None, int | None] = (None, None),
        span: tuple[Any, Any] = (None, None),
    ) -> str:
        """Register as ``alias`` the files of ``table``'s snapshot that may hold the rows wanted."""
        snap = self._snapshots[table][1]
        dataset = snap.dataset(versions=versions, time=(self.schemas[table].time_column, *span))
        con.register(alias, dataset)
        return alias

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
        fresh = self._files(con, "__new", run.table, versions=(run.after_version, None))
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
                run.hits.extend(self._hit(rule, schema, row, [run.table, row["__v"]]) for row in rows)
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
                seed = self._files(
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
        return [self._hit(rule, schema, row, [run.table, row["__v"]]) for row in rows]

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
        a_from = self._files(con, "__a", rule.table, span=(low, high))
        b_from = self._files(con, "__b", partner.table, span=(low, high))
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
            hits.append(self._hit(rule, a_schema, row, [rule.table, row["__v"], partner.table, row["__vb"]]))
        if partner.table != rule.table:
            run.may_repeat.update(h["hit_id"] for h in hits)
        return hits

    # --- hits -----------------------------------------------------------------------------

    def _hit(
        self, rule: Rule, schema: TableSchema, row: dict[str, Any], parts: Sequence[object]
    ) -> dict[str, Any]:
        values = {name: row.get(f"__g{i}") for i, name in enumerate(rule.group_by)}
        group_key = "; ".join(f"{k}={'' if v is None else v}" for k, v in values.items())
        dedup_fields = rule.dedup_by if rule.dedup_by is not None else rule.group_by
        dedup = "; ".join(f"{k}={'' if values[k] is None else values[k]}" for k in dedup_fields)
        fix = self._fixes.get(rule.id)
        if fix is None and rule.fix is not None:
            fix = self._fixes[rule.id] = (
                rule.fix.summary,
                json.dumps(rule.fix.model_dump(mode="json"), ensure_ascii=False),
            )
        return {
            "hit_id": hit_id(rule.id, group_key, parts),
            "rule_id": rule.id,
            "rule_title": rule.title,
            "severity": str(rule.severity),
            "kind": rule.kind,
            "table_name": rule.table,
            "group_key": group_key,
            "dedup_key": f"{rule.id}|{dedup}",
            "first_seen": row.get("first_seen"),
            "last_seen": row.get("last_seen"),
            "count": int(row["n"]),
            "samples": row["samples"],
            "fix_summary": fix[0] if fix else None,
            "fix_json": fix[1] if fix else None,
            "references": list(rule.references),
            "query": self._query(rule, schema, values),
            "detected_at": dt.datetime.now(dt.UTC),
        }

    def _query(self, rule: Rule, schema: TableSchema, values: dict[str, Any]) -> str:
        """The SQL that lists the hit's rows: the rule's test (rendered once per rule), narrowed to the group."""
        key = (rule.id, schema.name)
        where = self._queries.get(key)
        if where is None:
            where = self._queries[key] = pretty(compile_condition(rule.match, schema))
        narrowing = group_filter(values, schema)
        lines = [f"SELECT * FROM {scan.q(rule.table)}", f"WHERE ({where})" if narrowing else f"WHERE {where}"]
        if narrowing:
            lines.append(f"  AND {narrowing}")
        if schema.time_column:
            lines.append(f"ORDER BY {scan.q(schema.time_column)}")
        return "\n".join(lines)

    def _write(self, run: TableRun) -> None:
        """Append new hits and the watermark in one commit (the watermark even with no hits)."""
        rows = pa.Table.from_pylist(run.hits, schema=HITS_SCHEMA) if run.hits else HITS_SCHEMA.empty_table()
        existing = self.wh.table(HITS_TABLE, refresh=True)
        check = [h["hit_id"] for h in run.hits if run.after_version is None or h["hit_id"] in run.may_repeat]
        if existing is not None and check:
            stored = scan.Snapshot.of(existing, self.wh.table_path(HITS_TABLE)).dataset()
            seen = stored.to_table(
                columns=["hit_id"], filter=pc.field("hit_id").isin(pa.array(check, pa.string()))
            )
            if seen.num_rows:
                rows = rows.filter(pc.invert(pc.is_in(rows["hit_id"], value_set=seen["hit_id"])))
        run.written = rows.num_rows
        self.wh.append(HITS_TABLE, rows, {watermark_app_id(run.table): run.to_version})
        self._hits_writes += 1
        if self.compact_hits_every and self._hits_writes % self.compact_hits_every == 0:
            self.wh.compact(HITS_TABLE)  # keeps rows, `_version` values and watermarks as they are

"""The SQL of one evaluation: one scan of a table's new rows for all its rules, then small queries.

Stage 1 reads the new rows once and keeps those that pass the prefilter (``compiler.prefilter``);
stage 2 computes each rule's exact test on those candidates only. Per-rule aggregation (plain,
threshold, correlate) then works on a handful of rows. Every rule-derived piece of SQL comes
from ``compiler`` (a syntax tree rendered by sqlglot); numbers are validated integers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot import exp

from rules.compiler import compile_condition, value_expr
from rules.model import Condition, Rule, field_tests
from rules.schema import SOURCE_COLUMNS, TableSchema
from warehouse.store import VERSION_COLUMN

SAMPLE_CHARS = 2000
MAX_SAMPLES = 5


def q(name: str) -> str:
    """A quoted identifier (names here come from schemas or are fixed, never from rule text)."""
    return '"' + name.replace('"', '""') + '"'


def sql(expression: exp.Expr) -> str:
    return expression.sql(dialect="duckdb")


def needed_columns(schema: TableSchema, rules: Sequence[Rule]) -> list[str]:
    """Columns stage 1 must carry so every later query can run on the candidates alone."""
    wanted = {*SOURCE_COLUMNS, *schema.text_columns}
    if schema.time_column:
        wanted.add(schema.time_column)
    for rule in rules:
        names = [t.field for t in field_tests(rule.match)] + list(rule.group_by)
        if rule.threshold and rule.threshold.distinct:
            names.append(rule.threshold.distinct)
        if rule.correlate:
            names.extend(rule.correlate.on)
        for name in names:
            if schema.has(name.partition(".")[0]) or schema.has(name):
                wanted.add(schema.resolve(name).column)
    return [f.name for f in schema.schema if f.name in wanted] + [VERSION_COLUMN]


def window_columns(schema: TableSchema, rule: Rule) -> list[str]:
    """What a threshold's window history needs of a row: time, version, scope and the rule's fields."""
    wanted = {"source_file"}
    if schema.time_column:
        wanted.add(schema.time_column)
    names = [t.field for t in field_tests(rule.match)] + list(rule.group_by)
    if rule.threshold and rule.threshold.distinct:
        names.append(rule.threshold.distinct)
    for name in names:
        if schema.has(name.partition(".")[0]) or schema.has(name):
            wanted.add(schema.resolve(name).column)
    return [f.name for f in schema.schema if f.name in wanted and f.name != VERSION_COLUMN] + [VERSION_COLUMN]


def history_rows(table: str, columns: Sequence[str], cond: Condition, schema: TableSchema) -> str:
    """Matching rows already evaluated (``_version <= ?``) with time from ``?`` on: a window's history."""
    ts = q(schema.time_column or "")
    return (
        f"SELECT {', '.join(q(c) for c in columns)} FROM {q(table)} "
        f"WHERE {q(VERSION_COLUMN)} <= ? AND {ts} >= ? AND {sql(compile_condition(cond, schema))}"
    )


@dataclass(frozen=True)
class Shape:
    """How a rule's rows are normalised: fixed column names whatever the table."""

    schema: TableSchema
    group_by: tuple[str, ...] = ()
    distinct: str | None = None
    on: tuple[str, ...] = ()

    def projection(self, *, window_only: bool = False) -> str:
        """The normalised columns; ``window_only`` leaves out (as NULL) all but time, groups and
        distinct value: what a history row contributes to a window, so its text is never read."""
        s = self.schema
        ts = q(s.time_column) if s.time_column else "CAST(NULL AS TIMESTAMPTZ)"
        texts = [f"CAST({q(c)} AS VARCHAR)" for c in s.text_columns]
        text = f"left(coalesce({', '.join(texts)}), {SAMPLE_CHARS})" if texts else "CAST(NULL AS VARCHAR)"
        if window_only:
            text = "CAST(NULL AS VARCHAR)"
        row = ["__v", "__sf", "__so", "__ln"]
        source = [q(VERSION_COLUMN), q("source_file"), q("source_offset"), q("line_number")]
        if window_only:
            source = [
                "CAST(NULL AS BIGINT)",
                "CAST(NULL AS VARCHAR)",
                "CAST(NULL AS BIGINT)",
                "CAST(NULL AS BIGINT)",
            ]
        cols = [
            f"{ts} AS __ts",
            *(f"{c} AS {n}" for c, n in zip(source, row, strict=True)),
            f"{text} AS __text",
        ]
        for i, name in enumerate(self.group_by):
            cols.append(f"CAST({sql(value_expr(s.resolve(name)))} AS VARCHAR) AS __g{i}")
        if self.distinct:
            cols.append(f"{sql(value_expr(s.resolve(self.distinct)))} AS __d")
        for i, name in enumerate(self.on):
            cols.append(f"CAST({sql(value_expr(s.resolve(name)))} AS VARCHAR) AS __on{i}")
        return ", ".join(cols)

    @property
    def group_cols(self) -> list[str]:
        return [f"__g{i}" for i in range(len(self.group_by))]


def scope_filter(source_files: Sequence[str] | None) -> str:
    if source_files is None:
        return "TRUE"
    return sql(
        exp.In(
            this=exp.column("source_file", quoted=True),
            expressions=[exp.Literal.string(f) for f in source_files],
        )
    )


def stage1(table: str, columns: Sequence[str], prefilter: exp.Expr, scope: str) -> str:
    """New rows (``_version`` in ``(?, ?]``) that may match some rule: the one full scan."""
    return (
        f"SELECT {', '.join(q(c) for c in columns)} FROM {q(table)} "
        f"WHERE {q(VERSION_COLUMN)} > ? AND {q(VERSION_COLUMN)} <= ? AND {scope} AND ({sql(prefilter)})"
    )


def stage2(first: str, conditions: Sequence[Condition], schema: TableSchema) -> str:
    """Each rule's exact test over the candidates of ``first`` (stage 1), as boolean columns
    ``__m0``, ``__m1``, ...; one statement, so a run makes one round trip for both stages."""
    flags = ", ".join(f"{sql(compile_condition(c, schema))} AS __m{i}" for i, c in enumerate(conditions))
    return f"WITH __cand AS ({first}) SELECT *, {flags} FROM __cand"


def _samples(order: str = "__ts, __sf, __so") -> str:
    return (
        "list(struct_pack(source_file := __sf, source_offset := __so, line_number := __ln, text := __text) "
        f"ORDER BY {order})[1:{MAX_SAMPLES}] AS samples"
    )


def plain(shape: Shape, flag: str) -> str:
    """One group per (group key, table version): count, time range, samples."""
    groups = ", ".join([*shape.group_cols, "__v"])
    return (
        f"SELECT {groups}, count(*) AS n, min(__ts) AS first_seen, max(__ts) AS last_seen, {_samples()} "
        f"FROM (SELECT {shape.projection()} FROM __m WHERE {flag}) GROUP BY {groups}"
    )


def lookback(table: str, cond: Condition, shape: Shape, scope: str) -> str:
    """Rows already evaluated (``_version <= ?``) within ``[?, ?]`` that match: window history.

    Only what a window needs is read (``Shape.projection(window_only=True)``): the threshold
    query reports new rows only, so a history row's text and position are never shown."""
    ts = q(shape.schema.time_column or "")
    return (
        f"SELECT {shape.projection(window_only=True)} FROM {q(table)} WHERE {q(VERSION_COLUMN)} <= ? AND {ts} >= ? AND {ts} <= ? "
        f"AND {scope} AND {sql(compile_condition(cond, shape.schema))}"
    )


def threshold(shape: Shape, flag: str, history: str | None, count: int, window: int) -> str:
    """New rows whose window (``count`` rows, or distinct values, in ``window`` s) reaches the threshold."""
    fresh = f"SELECT {shape.projection()}, TRUE AS __new FROM __m WHERE {flag}"
    rows = fresh if history is None else f"{fresh} UNION ALL SELECT *, FALSE AS __new FROM ({history})"
    part = f"PARTITION BY {', '.join(shape.group_cols)} " if shape.group_by else ""
    frame = (
        f"OVER ({part}ORDER BY __ts RANGE BETWEEN INTERVAL {int(window)} SECOND PRECEDING AND CURRENT ROW)"
    )
    measure = "count(DISTINCT __d)" if shape.distinct else "count(*)"
    groups = ", ".join([*shape.group_cols, "__v"])
    return (
        f"WITH w AS (SELECT *, {measure} {frame} AS __n, min(__ts) {frame} AS __start "
        f"FROM ({rows}) WHERE __ts IS NOT NULL) "
        f"SELECT {groups}, max(__n) AS n, min(__start) AS first_seen, max(__ts) AS last_seen, {_samples()} "
        f"FROM w WHERE __new AND __n >= {int(count)} GROUP BY {groups}"
    )


def side(table: str, cond: Condition, shape: Shape, scope: str) -> str:
    """One side of a correlation: matching rows in ``[?, ?]`` of any committed version."""
    ts = q(shape.schema.time_column or "")
    return (
        f"SELECT {shape.projection()} FROM {q(table)} WHERE {ts} >= ? AND {ts} <= ? AND {scope} "
        f"AND {sql(compile_condition(cond, shape.schema))}"
    )


def pairs(a_shape: Shape, b_sql: str, a_sql: str, within: int, new_a: str, new_b: str) -> str:
    """A rows followed by B rows within ``within`` s on the same key; one group per version pair."""
    keys = " AND ".join(f"a.__on{i} IS NOT DISTINCT FROM b.__on{i}" for i in range(len(a_shape.on))) or "TRUE"
    groups = [f"a.__g{i}" for i in range(len(a_shape.group_by))]
    group_sql = ", ".join([*groups, "a.__v", "b.__v"])
    sample = (
        "list(DISTINCT struct_pack(source_file := {p}.__sf, source_offset := {p}.__so, "
        "line_number := {p}.__ln, text := {p}.__text))"
    )
    return (
        f"SELECT {', '.join(f'{g} AS __g{i}' for i, g in enumerate(groups))}{', ' if groups else ''}"
        f"a.__v AS __v, b.__v AS __vb, count(DISTINCT (a.__sf, a.__so)) AS n, min(a.__ts) AS first_seen, "
        f"max(b.__ts) AS last_seen, {sample.format(p='a')} AS sa, {sample.format(p='b')} AS sb "
        f"FROM ({a_sql}) a JOIN ({b_sql}) b ON {keys} AND b.__ts >= a.__ts "
        f"AND b.__ts <= a.__ts + INTERVAL {int(within)} SECOND "
        f"WHERE ({new_a}) OR ({new_b}) GROUP BY {group_sql}"
    )

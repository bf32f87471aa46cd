"""Load-time checks of a rule against its table: fields exist, values fit, regexes compile in RE2.

A bad rule stops start-up with a message that says what to change (DESIGN.md, invariant 3), so
everything that could fail at evaluation time is tried here once, against an empty table of the
parser's real schema.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

import duckdb
import pyarrow as pa

from rules.compiler import compile_condition, needle
from rules.model import NUMERIC_OPS, FieldTest, Op, Rule, field_tests
from rules.schema import FieldRef, TableSchema, UnknownFieldError

#: (line or None, message)
Finding = tuple[int | None, str]


@lru_cache(maxsize=1)
def _duck() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def re2_error(pattern: str) -> str | None:
    """DuckDB's own RE2 verdict on ``pattern``: None if it compiles, else the reason."""
    try:
        _duck().execute("SELECT regexp_matches('', ?)", [pattern]).fetchall()
    except duckdb.Error as exc:
        return str(exc).splitlines()[0].replace("Invalid Input Error: ", "")
    return None


def _check_values(test: FieldTest, ref: FieldRef) -> list[str]:
    problems: list[str] = []
    values = test.values
    if (
        any(isinstance(v, bool) for v in values)
        and test.op is not Op.exists
        and not pa.types.is_boolean(ref.type)
    ):
        problems.append(f"`{test.field}`: true/false only fits `exists` or a boolean field")
    if ref.is_timestamp and test.op not in (Op.exists,):
        problems.append(
            f"`{test.field}` is a time; rules test times through threshold/correlate windows, not match"
        )
    elif test.op is Op.exists:
        if len(values) != 1 or not isinstance(values[0], bool):
            problems.append(f"`{test.field}|exists` takes true or false")
    elif test.op in NUMERIC_OPS:
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int | float)]
        if bad:
            problems.append(f"`{test.field}|{test.op}` compares numbers; {bad[0]!r} is not a number")
    elif test.op is Op.cidr:
        if not (ref.is_string or ref.key is not None):
            problems.append(f"`{test.field}|cidr` needs a text field holding an IP address")
        for v in values:
            try:
                ipaddress.IPv4Network(str(v), strict=False)
            except ValueError:
                problems.append(f"`{test.field}|cidr`: {v!r} is not an IPv4 network such as 10.0.0.0/8")
    elif test.op is Op.equals and ref.key is None and ref.is_numeric:
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int | float)]
        if bad:
            problems.append(f"`{test.field}` holds numbers ({ref.type}); write {bad[0]!r} as a number")
    elif test.op is Op.regex:
        for v in values:
            reason = re2_error(str(v))
            if reason:
                problems.append(f"`{test.field}|regex`: {v!r} does not compile in RE2 ({reason})")
    elif any(isinstance(v, str) and v == "" for v in values) and test.op is not Op.equals:
        problems.append(f"`{test.field}|{test.op}` with an empty text matches every row; use exists")
    return problems


def check_rule(
    rule: Rule, schema: TableSchema, partner: Rule | None = None, partner_schema: TableSchema | None = None
) -> list[Finding]:
    """Every problem of ``rule`` against its table (and its correlated rule's), with lines."""
    found: list[Finding] = []
    for test in field_tests(rule.match):
        try:
            ref = schema.resolve(test.field)
        except UnknownFieldError as exc:
            found.append((test.line, str(exc)))
            continue
        found.extend((test.line, p) for p in _check_values(test, ref))
    for name in rule.group_by:
        try:
            schema.resolve(name)
        except UnknownFieldError as exc:
            found.append((None, f"group_by: {exc}"))
    if rule.window is not None and schema.time_column is None:
        found.append(
            (
                None,
                f"table {schema.name} has no time column, so it cannot have a threshold or correlate window",
            )
        )
    if rule.threshold is not None and rule.threshold.distinct is not None:
        try:
            schema.resolve(rule.threshold.distinct)
        except UnknownFieldError as exc:
            found.append((None, f"threshold.distinct: {exc}"))
    if rule.correlate is not None:
        found.extend(_check_correlate(rule, schema, partner, partner_schema))
    if found:
        return found
    try:
        _compiles(rule, schema)
    except duckdb.Error as exc:
        found.append((None, f"the rule does not compile to valid SQL: {str(exc).splitlines()[0]}"))
    return found


def _check_correlate(
    rule: Rule, schema: TableSchema, target: Rule | None, other: TableSchema | None
) -> list[Finding]:
    assert rule.correlate is not None
    if target is None:
        return [(None, f"correlate.followed_by: no rule {rule.correlate.followed_by!r} is loaded")]
    if target.correlate is not None:
        return [(None, "correlate.followed_by must name a plain rule, not another correlated one")]
    if other is None:
        return []  # the partner's table has no parser yet: the rule waits with it
    if other.time_column is None:
        return [(None, f"correlate.followed_by: table {other.name} has no time column")]
    found: list[Finding] = []
    for name in rule.correlate.on:
        for side in (schema, other):
            try:
                side.resolve(name)
            except UnknownFieldError as exc:
                found.append((None, f"correlate.on: {exc}"))
    return found


def _compiles(rule: Rule, schema: TableSchema) -> None:
    """Run the rule's SQL once over an empty table of the real schema."""
    con = _duck()
    name = f"__check_{schema.name}"
    con.register(name, schema.schema.empty_table())
    try:
        where = compile_condition(rule.match, schema).sql(dialect="duckdb")
        con.execute(f'SELECT count(*) FROM "{name}" AS "{schema.name}" WHERE {where}').fetchall()
        n = needle(rule.match, schema)
        if n is not None:
            for key, frags in n.patterns.items():
                reason = re2_error("|".join(frags))
                if reason:
                    raise duckdb.InvalidInputException(
                        f"prefilter pattern for {key} does not compile: {reason}"
                    )
    finally:
        con.unregister(name)

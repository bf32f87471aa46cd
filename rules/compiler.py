"""Rules to SQL, built as a syntax tree (sqlglot): a rule's text is never pasted into SQL.

Values become string or number literals that the generator escapes; field names are checked
against the table's schema before they become (quoted) identifiers. Case-insensitive string tests
compile to RE2 matches with the ``i`` flag, so the exact test and the prefilter below agree on
what "case-insensitive" means.

The prefilter is why the whole library costs little more than one rule: every rule yields a
*necessary* condition (a literal or pattern that must occur in some column, or an integer that
must be in a list), and all of them fold into one RE2 alternation per column. A row that passes
no alternation cannot match any rule, so the exact tests run only on the few rows that pass.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from sqlglot import exp

from rules.model import NUMERIC_OPS, AllOf, Condition, FieldTest, NotOf, Op, Scalar
from rules.schema import WIDE_COLUMNS, FieldRef, TableSchema

_RE_META = set("\\.^$|?*+()[]{}")


def re_escape(text: str) -> str:
    """Escape ``text`` so RE2 matches it literally."""
    return "".join("\\" + c if c in _RE_META else c for c in text)


def ident(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def lit(value: Scalar) -> exp.Expr:
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(value)


def value_expr(ref: FieldRef) -> exp.Expr:
    """The SQL for a field's value: a column, or ``column['key']`` for a MAP entry."""
    col = ident(ref.column)
    if ref.key is None:
        return col
    return exp.Bracket(this=col, expressions=[exp.Literal.string(ref.key)])


def _as_text(ref: FieldRef) -> exp.Expr:
    expr = value_expr(ref)
    return expr if ref.is_string else exp.cast(expr, "VARCHAR")


def _regex(subject: exp.Expr, pattern: str, cased: bool) -> exp.Expr:
    args = [subject, exp.Literal.string(pattern)]
    if not cased:
        args.append(exp.Literal.string("i"))
    return exp.Anonymous(this="regexp_matches", expressions=args)


def _combine(parts: Sequence[exp.Expr], match_all: bool) -> exp.Expr:
    if len(parts) == 1:
        return parts[0]
    return exp.and_(*parts) if match_all else exp.or_(*parts)


def _string_pattern(op: Op, value: str) -> str:
    body = re_escape(value)
    if op is Op.equals:
        return f"^(?:{body})$"
    if op is Op.starts_with:
        return f"^(?:{body})"
    if op is Op.ends_with:
        return f"(?:{body})$"
    return body


def _ipv4_int(text: exp.Expr) -> exp.Expr:
    """An IPv4 address in text form as a BIGINT (NULL if it is not one)."""
    octets = [
        exp.TryCast(
            this=exp.Anonymous(
                this="split_part", expressions=[text, exp.Literal.string("."), exp.Literal.number(i)]
            ),
            to=exp.DataType.build("UTINYINT", dialect="duckdb"),
        )
        for i in (1, 2, 3, 4)
    ]
    total: exp.Expr = exp.cast(octets[0], "BIGINT")
    for octet in octets[1:]:
        shifted = exp.Mul(this=exp.paren(total), expression=exp.Literal.number(256))
        total = exp.Add(this=shifted, expression=exp.cast(octet, "BIGINT"))
    four = exp.EQ(
        this=exp.Anonymous(
            this="len",
            expressions=[exp.Anonymous(this="string_split", expressions=[text, exp.Literal.string(".")])],
        ),
        expression=exp.Literal.number(4),
    )
    return exp.Case(ifs=[exp.If(this=four, true=total)])


def _leaf(test: FieldTest, ref: FieldRef) -> exp.Expr:
    values = test.values
    if test.op is Op.exists:
        present: exp.Expr = exp.Not(this=exp.Is(this=value_expr(ref), expression=exp.null()))
        if ref.key is not None:
            present = exp.Anonymous(
                this="map_contains", expressions=[ident(ref.column), exp.Literal.string(ref.key)]
            )
        if ref.is_string or ref.key is not None:
            present = exp.and_(present, exp.NEQ(this=_as_text(ref), expression=exp.Literal.string("")))
        return present if values[0] else exp.Not(this=exp.paren(present))
    if test.op in NUMERIC_OPS:
        subject = (
            value_expr(ref)
            if ref.is_numeric
            else exp.TryCast(this=_as_text(ref), to=exp.DataType.build("DOUBLE"))
        )
        cmp = {Op.gt: exp.GT, Op.gte: exp.GTE, Op.lt: exp.LT, Op.lte: exp.LTE}[test.op]
        return _combine([cmp(this=subject, expression=lit(v)) for v in values], test.match_all)
    if test.op is Op.cidr:
        number = _ipv4_int(_as_text(ref))
        parts = []
        for v in values:
            net = ipaddress.IPv4Network(str(v), strict=False)
            parts.append(
                exp.Between(
                    this=number,
                    low=exp.Literal.number(int(net.network_address)),
                    high=exp.Literal.number(int(net.broadcast_address)),
                )
            )
        return _combine(parts, test.match_all)
    if test.op is Op.equals and not ref.is_string and ref.key is None:
        if test.match_all:
            return exp.and_(*[exp.EQ(this=value_expr(ref), expression=lit(v)) for v in values])
        if len(values) == 1:
            return exp.EQ(this=value_expr(ref), expression=lit(values[0]))
        return exp.In(this=value_expr(ref), expressions=[lit(v) for v in values])
    subject = _as_text(ref)
    if test.op is Op.regex:
        return _combine([_regex(subject, str(v), test.cased) for v in values], test.match_all)
    if test.cased and test.op is not Op.equals:
        fn = {Op.contains: "contains", Op.starts_with: "starts_with", Op.ends_with: "ends_with"}[test.op]
        return _combine(
            [exp.Anonymous(this=fn, expressions=[subject, exp.Literal.string(str(v))]) for v in values],
            test.match_all,
        )
    if test.cased:
        if test.match_all or len(values) == 1:
            return _combine([exp.EQ(this=subject, expression=lit(str(v))) for v in values], test.match_all)
        return exp.In(this=subject, expressions=[lit(str(v)) for v in values])
    if test.match_all:
        return exp.and_(*[_regex(subject, _string_pattern(test.op, str(v)), False) for v in values])
    alternatives = "|".join(_string_pattern(test.op, str(v)) for v in values)
    return _regex(subject, alternatives if len(values) == 1 else f"(?:{alternatives})", False)


def compile_condition(cond: Condition, schema: TableSchema) -> exp.Expr:
    """The exact test of ``cond`` over one row of ``schema``; NULL fields count as no match."""
    if isinstance(cond, FieldTest):
        return exp.Coalesce(
            this=exp.paren(_leaf(cond, schema.resolve(cond.field))), expressions=[exp.false()]
        )
    if isinstance(cond, NotOf):
        return exp.Not(this=exp.paren(compile_condition(cond.item, schema)))
    parts = [compile_condition(c, schema) for c in cond.items]
    return exp.and_(*parts) if isinstance(cond, AllOf) else exp.or_(*parts)


# --- prefilter -----------------------------------------------------------------------------


@dataclass
class Needle:
    """A necessary condition: some alternative must hold for the condition to be true.

    ``patterns`` maps a text column expression (as SQL) to RE2 fragments; ``numbers`` maps an
    integer column to the values it must take.
    """

    patterns: dict[str, list[str]] = field(default_factory=dict)
    subjects: dict[str, exp.Expr] = field(default_factory=dict)
    numbers: dict[str, set[Scalar]] = field(default_factory=dict)
    widths: dict[str, int] = field(default_factory=dict)  # cost of one regex pass per text column

    def merge(self, other: Needle) -> None:
        for key, frags in other.patterns.items():
            self.patterns.setdefault(key, []).extend(frags)
            self.subjects[key] = other.subjects[key]
            self.widths[key] = other.widths[key]
        for col, nums in other.numbers.items():
            self.numbers.setdefault(col, set()).update(nums)

    @property
    def cost(self) -> int:
        """Lower is better: integer lists are cheapest, then short text columns, then free text."""
        return sum(self.widths.values()) + len(self.numbers)


def _leaf_needle(test: FieldTest, ref: FieldRef) -> Needle | None:
    if test.op in (Op.equals, Op.contains, Op.starts_with, Op.ends_with, Op.regex) and (
        ref.is_string or ref.key is not None
    ):
        if test.op is Op.regex:
            frags = [f"(?:{v})" if test.cased else f"(?i:{v})" for v in test.values]
        else:
            body = [_string_pattern(test.op, str(v)) for v in test.values]
            frags = [f"(?:{b})" if test.cased else f"(?i:{b})" for b in body]
        if test.match_all:
            frags = frags[:1]  # every value must occur; one of them is enough to look for
        subject = _as_text(ref)
        key = subject.sql("duckdb")
        width = 30 if ref.column in WIDE_COLUMNS else 20 if ref.key is not None else 10
        return Needle(patterns={key: frags}, subjects={key: subject}, widths={key: width})
    if test.op is Op.equals and ref.is_integer and ref.key is None and not test.match_all:
        return Needle(numbers={ref.column: set(test.values)})
    return None


def needle(cond: Condition, schema: TableSchema) -> Needle | None:
    """A cheap necessary condition of ``cond``, or None if none can be derived (e.g. ``not``)."""
    if isinstance(cond, FieldTest):
        return _leaf_needle(cond, schema.resolve(cond.field))
    if isinstance(cond, NotOf):
        return None
    found = [needle(c, schema) for c in cond.items]
    if isinstance(cond, AllOf):
        usable = [n for n in found if n is not None]
        return min(usable, key=lambda n: n.cost) if usable else None
    if any(n is None for n in found):
        return None
    merged = Needle()
    for n in found:
        assert n is not None
        merged.merge(n)
    return merged


def prefilter(conditions: Iterable[Condition], schema: TableSchema) -> exp.Expr:
    """One expression true for every row that any of ``conditions`` can match."""
    total = Needle()
    exact: list[exp.Expr] = []
    for cond in conditions:
        n = needle(cond, schema)
        if n is None:
            exact.append(exp.paren(compile_condition(cond, schema)))
        else:
            total.merge(n)
    parts: list[exp.Expr] = []
    for col in sorted(total.numbers):
        values = sorted(total.numbers[col], key=str)
        parts.append(exp.In(this=ident(col), expressions=[lit(v) for v in values]))
    for key in sorted(total.patterns, key=lambda k: (total.widths[k], k)):
        frags = list(dict.fromkeys(total.patterns[key]))
        parts.append(
            exp.Coalesce(
                this=exp.Anonymous(
                    this="regexp_matches",
                    expressions=[total.subjects[key], exp.Literal.string("|".join(frags))],
                ),
                expressions=[exp.false()],
            )
        )
    parts.extend(exact)
    return exp.or_(*parts) if parts else exp.false()


# --- whole queries -------------------------------------------------------------------------


def group_key_expr(fields: Sequence[str], schema: TableSchema) -> exp.Expr:
    """``'field=value; field=value'`` (empty string without fields), the entity a hit is about."""
    if not fields:
        return exp.Literal.string("")
    parts: list[exp.Expr] = []
    for name in fields:
        value = exp.Coalesce(this=_as_text(schema.resolve(name)), expressions=[exp.Literal.string("")])
        parts.append(exp.DPipe(this=exp.Literal.string(f"{name}="), expression=value, safe=True))
    return exp.Anonymous(this="concat_ws", expressions=[exp.Literal.string("; "), *parts])


def sql_string(value: str) -> str:
    """A DuckDB string literal, rendered exactly as sqlglot renders ``Literal.string`` (tested)."""
    return "'" + value.replace("'", "''") + "'"


def group_filter(equals: dict[str, object], schema: TableSchema) -> str | None:
    """``field = 'value' AND ...`` for one group of a hit (None without group fields).

    Runs once per hit, so only the literals are rendered here (by sqlglot, escaped).
    """
    parts = []
    for name, value in equals.items():
        column = _text_sql(schema, name)
        if value is None:
            parts.append(f"{column} IS NULL")
        else:
            parts.append(f"{column} = {sql_string(str(value))}")
    return " AND ".join(parts) if parts else None


@lru_cache(maxsize=1024)
def _text_sql(schema: TableSchema, name: str) -> str:
    return _as_text(schema.resolve(name)).sql(dialect="duckdb")


def rule_query(table: str, cond: Condition, schema: TableSchema) -> exp.Select:
    """``SELECT * FROM table WHERE <rule>``, for people and tickets."""
    where = compile_condition(cond, schema)
    query = exp.select(exp.Star()).from_(exp.to_identifier(table, quoted=True)).where(where)
    if schema.time_column:
        query = query.order_by(ident(schema.time_column))
    return query


def pretty(expression: exp.Expr) -> str:
    return expression.sql(dialect="duckdb", pretty=True)

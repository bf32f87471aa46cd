"""What each modifier means, checked in a real DuckDB; rule text never becomes SQL syntax."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from rules.compiler import compile_condition, prefilter, re_escape, sql_string
from rules.model import AllOf, AnyOf, Condition, FieldTest, NotOf, Op
from rules.schema import TableSchema

SCHEMA = pa.schema(
    [
        pa.field("text", pa.string()),
        pa.field("code", pa.int32()),
        pa.field("ip", pa.string()),
        pa.field("data", pa.map_(pa.string(), pa.string())),
    ]
)
ROWS = [
    {
        "text": "TLS negotiation failed with error UnknownCredentials",
        "code": 451,
        "ip": "10.1.2.3",
        "data": {"AlertDesc": "46"},
    },
    {
        "text": "451 4.4.0 Primary target IP address responded with",
        "code": 451,
        "ip": "192.168.7.9",
        "data": {},
    },
    {
        "text": "250 2.6.0 Queued mail for delivery",
        "code": 250,
        "ip": "10.255.0.1",
        "data": {"AlertDesc": ""},
    },
    {"text": None, "code": None, "ip": "not an ip", "data": None},
    {"text": "it's a 'quoted' % _ \\ text", "code": 550, "ip": "10.1.300.3", "data": {"x": "y"}},
]
TABLE = TableSchema("t", SCHEMA)
DUCK = duckdb.connect()  # one connection for the property tests: they run hundreds of queries


def matching(cond: Condition) -> list[int]:
    """Indexes of ROWS that ``cond`` matches, evaluated by DuckDB from the compiled tree."""
    con = duckdb.connect()
    rows = [{**r, "i": i} for i, r in enumerate(ROWS)]
    con.register("t", pa.Table.from_pylist(rows, schema=SCHEMA.append(pa.field("i", pa.int64()))))
    where = compile_condition(cond, TABLE).sql(dialect="duckdb")
    pre = prefilter([cond], TABLE).sql(dialect="duckdb")
    exact = [r[0] for r in con.execute(f"SELECT i FROM t WHERE {where} ORDER BY i").fetchall()]
    passed = {r[0] for r in con.execute(f"SELECT i FROM t WHERE {pre}").fetchall()}
    assert set(exact) <= passed, "the prefilter dropped a matching row"
    return exact


def t(field: str, op: Op, *values: object, **kw: bool) -> FieldTest:
    return FieldTest(field=field, op=op, values=values, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        (t("text", Op.contains, "unknowncredentials"), [0]),  # case-insensitive by default
        (t("text", Op.contains, "unknowncredentials", cased=True), []),
        (t("text", Op.contains, "UnknownCredentials", cased=True), [0]),
        (t("text", Op.starts_with, "451 4.4.0"), [1]),
        (t("text", Op.ends_with, "FOR DELIVERY"), [2]),
        (t("text", Op.equals, "250 2.6.0 queued mail for delivery"), [2]),
        (t("text", Op.equals, "250 2.6.0"), []),
        (t("text", Op.contains, "queued", "unknown"), [0, 2]),  # a list: any of them
        (t("text", Op.contains, "queued", "mail", match_all=True), [2]),  # |all: every one
        (t("text", Op.regex, r"^\d{3} \d\.\d\.\d"), [1, 2]),
        (t("text", Op.contains, "'quoted' % _ \\"), [4]),  # quotes and LIKE wildcards are literal
        (t("code", Op.equals, 451), [0, 1]),
        (t("code", Op.equals, 250, 550), [2, 4]),
        (t("code", Op.gte, 451), [0, 1, 4]),
        (t("code", Op.lt, 451), [2]),
        (t("ip", Op.cidr, "10.0.0.0/8"), [0, 2]),  # 10.1.300.3 is not an address
        (t("ip", Op.cidr, "192.168.7.0/24", "10.255.0.0/16"), [1, 2]),
        (t("text", Op.exists, True), [0, 1, 2, 4]),
        (t("text", Op.exists, False), [3]),
        (t("data.AlertDesc", Op.equals, "46"), [0]),
        (t("data.AlertDesc", Op.exists, True), [0]),  # present but empty does not count
        (NotOf(item=t("text", Op.contains, "451")), [0, 2, 3, 4]),  # NULL text: not a match, so NOT matches
        (AllOf(items=(t("code", Op.equals, 451), NotOf(item=t("text", Op.contains, "tls")))), [1]),
        (AnyOf(items=(t("code", Op.equals, 550), t("text", Op.starts_with, "250"))), [2, 4]),
    ],
)
def test_modifiers(cond: Condition, expected: list[int]) -> None:
    assert matching(cond) == expected


def test_a_hostile_value_stays_a_value() -> None:
    hostile = "x'); DROP TABLE t; --"
    sql = compile_condition(t("text", Op.contains, hostile), TABLE).sql(dialect="duckdb")
    assert "'x''); DROP TABLE t; --'" in sql.replace("\\", "")
    assert matching(t("text", Op.contains, hostile)) == []


#: Text as logs hold it: valid UTF-8 (no lone surrogates), no NUL.
TEXT = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")


@settings(max_examples=100, deadline=None)
@given(st.text(TEXT, max_size=30))
def test_string_literals_render_like_sqlglot_and_round_trip(value: str) -> None:
    value = value.replace("\x00", "")
    assert sql_string(value) == exp.Literal.string(value).sql(dialect="duckdb")
    assert DUCK.execute(f"SELECT {sql_string(value)}").fetchall()[0][0] == value


@settings(max_examples=100, deadline=None)
@given(st.text(TEXT, max_size=12), st.text(TEXT, max_size=40))
def test_escaped_literals_match_literally_in_re2(needle: str, haystack: str) -> None:
    haystack = haystack.replace("\x00", "")
    found = (
        duckdb.connect()
        .execute("SELECT regexp_matches(?, ?)", [haystack, re_escape(needle)])
        .fetchall()[0][0]
    )
    assert found == (needle in haystack)

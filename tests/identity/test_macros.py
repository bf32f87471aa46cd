"""``immutable_id(guid)`` / ``object_guid(immutable_id)`` in a real DuckDB session of the warehouse."""

from __future__ import annotations

import base64
import uuid

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warehouse.query import connect
from warehouse.store import Warehouse

#: Computed here from .NET's byte order (uuid.bytes_le is Guid.ToByteArray()).
COMPUTED = [
    (g, base64.b64encode(uuid.UUID(g).bytes_le).decode())
    for g in (
        "b8a1abcd-1a69-46c7-8da4-f9fc3c6da5d7",
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "01234567-89ab-cdef-0123-456789abcdef",
    )
]

#: Published pair: easy365manager.com, "How To Convert ImmutableId To ObjectGuid And Back"
#: (Get-ADUser tycho.brahe shows objectGuid f7cc07d7-...; Get-MsolUser shows ImmutableId 1wfM9x...).
PUBLISHED = ("f7cc07d7-7c15-447d-876d-c01b0e5a9e38", "1wfM9xV8fUSHbcAbDlqeOA==")


@pytest.fixture
def con(warehouse: Warehouse) -> duckdb.DuckDBPyConnection:
    return connect(warehouse)


def one(con: duckdb.DuckDBPyConnection, sql: str, *params: object) -> object:
    return con.execute(sql, list(params)).fetchall()[0][0]


@pytest.mark.parametrize(("guid", "immutable"), [*COMPUTED, PUBLISHED])
def test_known_pairs_both_ways(con: duckdb.DuckDBPyConnection, guid: str, immutable: str) -> None:
    assert one(con, "select immutable_id(?)", guid) == immutable
    assert one(con, "select object_guid(?)", immutable) == guid


def test_guid_spellings(con: duckdb.DuckDBPyConnection) -> None:
    guid, immutable = PUBLISHED
    for spelling in (guid.upper(), "{" + guid + "}", guid.replace("-", ""), f"  {guid} "):
        assert one(con, "select immutable_id(?)", spelling) == immutable
    assert one(con, "select immutable_id(CAST(? AS UUID))", guid) == immutable


@pytest.mark.parametrize("bad", ["", "not a guid", "f7cc07d7-7c15-447d-876d-c01b0e5a9e3", "zz" * 16])
def test_not_a_guid_is_null(con: duckdb.DuckDBPyConnection, bad: str) -> None:
    assert one(con, "select immutable_id(?)", bad) is None


@pytest.mark.parametrize(
    "bad", ["", "garbage!", "abc=", base64.b64encode(b"x" * 15).decode(), "1wfM9xV8fUSHbcAbDlqeOA"]
)
def test_not_an_immutable_id_is_null(con: duckdb.DuckDBPyConnection, bad: str) -> None:
    assert one(con, "select object_guid(?)", bad) is None


def test_null_stays_null(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "select immutable_id(NULL)") is None
    assert one(con, "select object_guid(NULL)") is None


@settings(max_examples=200, deadline=None)
@given(st.uuids())
def test_any_guid_matches_dotnet_byte_order(value: uuid.UUID) -> None:
    con = duckdb.connect()
    from warehouse.macros import MACROS

    for macro in MACROS:
        con.execute(macro)
    expected = base64.b64encode(value.bytes_le).decode()
    assert con.execute("select immutable_id(?)", [str(value)]).fetchall()[0][0] == expected
    assert con.execute("select object_guid(?)", [expected]).fetchall()[0][0] == str(value)

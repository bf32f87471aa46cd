"""ADSync events joined with sync errors by object (issue 4, item 5).

``events`` is built here with the documented columns of the events table (time_created, computer,
provider, event_id, message, event_data MAP) through ``Warehouse.append``; ``sync_errors`` comes
from the csexport golden file through the real ingest.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from ingest.backfill import ingest_paths
from parsers.base import SOURCE_FIELDS, TIMESTAMP
from tests.conftest import ROOT
from warehouse.identity import IdentityError, create_views, sync_error_events
from warehouse.query import connect
from warehouse.store import Warehouse

EVENTS_SCHEMA = pa.schema(
    [
        pa.field("time_created", TIMESTAMP),
        pa.field("computer", pa.string()),
        pa.field("provider", pa.string()),
        pa.field("event_id", pa.int32()),
        pa.field("message", pa.string()),
        pa.field("event_data", pa.map_(pa.string(), pa.string())),
        *SOURCE_FIELDS,
    ]
)


def event(
    minute: int, provider: str, event_id: int, message: str, data: dict[str, str] | None = None
) -> dict[str, object]:
    return {
        "time_created": dt.datetime(2016, 7, 19, 12, minute, tzinfo=dt.UTC),
        "computer": "AADC01.contoso.com",
        "provider": provider,
        "event_id": event_id,
        "message": message,
        "event_data": list((data or {}).items()),
        "source_file": "Application.evtx",
        "source_offset": minute,
        "line_number": None,
    }


EVENTS = [
    event(
        1,
        "Directory Synchronization",
        656,
        "Password Change Request - Anchor : zauhuGkax0aNpPn8PG2l1w==, Dn : CN=John Smith,OU=Managers,OU=Corp,"
        "DC=contoso,DC=com, Change Date : 07/19/2016 12:00:01",
    ),
    event(
        2,
        "ADSync",
        6100,
        "Export to contoso.onmicrosoft.com - AAD failed.\nTracking Id: 01D89A02-4CDC-47A6-9728-8FF68C320F89",
    ),
    event(
        3,
        "ADSync",
        6127,
        "The management agent run profile step completed with errors.",
        {"Anchor": "UkRy/erM/0GKFIdq6v8aCQ=="},
    ),
    event(4, "Schannel", 36874, "A TLS connection request was received for john.smith@contoso.com."),
    event(5, "ADSync", 6946, "Scheduler started the synchronization cycle."),
]


@pytest.fixture
def wh(warehouse: Warehouse) -> Warehouse:
    # csexport_aad_errors.xml: written for these tests from the csexport export-error schema
    ingest_paths(warehouse, [ROOT / "tests" / "golden" / "identity" / "csexport_aad_errors.xml"])
    warehouse.append("events", pa.Table.from_pylist(EVENTS, schema=EVENTS_SCHEMA))
    return warehouse


def test_events_meet_errors_of_the_same_object(wh: Warehouse) -> None:
    rows = sync_error_events(wh).to_pylist()
    assert [(r["upn"], r["event_id"], r["matched_by"]) for r in rows] == [
        ("john.smith@contoso.com", 656, "source anchor"),
        ("bob.taylor@contoso.com", 6100, "tracking id"),
        ("sara.davis@contoso.com", 6127, "source anchor"),
    ]
    assert rows[0]["error_type"] == "AttributeValueMustBeUnique"


def test_view_in_a_session(wh: Warehouse) -> None:
    con = connect(wh)
    assert create_views(con, wh.table_names()) == ["sync_error_events"]
    count = con.execute("select count(*) from sync_error_events where provider <> 'Schannel'").fetchall()[0][
        0
    ]
    assert count == 3


def test_without_events_the_error_says_what_to_ingest(warehouse: Warehouse) -> None:
    with pytest.raises(IdentityError, match="Application log"):
        sync_error_events(warehouse)

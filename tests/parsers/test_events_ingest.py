"""Windows event exports through the real ingest into a warehouse, then queried with SQL.

Reads sample_logs/windows (exports written for the seed scenarios) and the real public samples
../shared/samples/evtx/omerbenamram-evtx_2-vss_7-System.evtx and
omerbenamram-evtx_MSExchange_Management_wec.evtx (origin: github omerbenamram/evtx, samples/).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.backfill import IngestStats, ingest_paths
from parsers.base import ParseOptions
from tests.conftest import SAMPLE_LOGS
from warehouse.query import run
from warehouse.store import Warehouse

OPTIONS = ParseOptions(timezone="Asia/Dubai")


@pytest.fixture
def loaded(warehouse: Warehouse, shared_samples: Path) -> tuple[Warehouse, IngestStats]:
    stats = ingest_paths(warehouse, [SAMPLE_LOGS / "windows", shared_samples / "evtx"], options=OPTIONS)
    return warehouse, stats


def test_every_record_is_a_row_or_a_reject(loaded: tuple[Warehouse, IngestStats]) -> None:
    wh, stats = loaded
    # the forwarded-events export repeats 3 of EX01's events that its Get-WinEvent export brought
    assert stats.duplicates == 3
    assert stats.records_read == stats.row_count + stats.rejects + stats.duplicates
    files = run(
        wh,
        "select path, format, sum(records_read) r, sum(rows) w, sum(rejects) j, sum(duplicates) d, "
        "bool_or(complete) c from files group by 1, 2 order by 1",
    ).to_pylist()
    assert len(files) == 9
    assert all(f["r"] == f["w"] + f["j"] + f["d"] and f["c"] for f in files), files
    by_path = {Path(f["path"]).name: f for f in files}
    assert by_path["omerbenamram-evtx_2-vss_7-System.evtx"]["w"] == 1160
    assert by_path["wec01_forwarded_events.csv"]["j"] == 3
    counts = run(wh, "select format, count(*) n from events group by 1 order by 1").to_pylist()
    assert counts == [
        {"format": "csv", "n": 28},
        {"format": "evtx", "n": 1161},
        {"format": "pscsv", "n": 8},
        {"format": "txt", "n": 28},
        {"format": "xml", "n": 14},  # 17 records, 3 of them events another export brought
    ]
    assert by_path["wec01_forwarded_events.xml"]["d"] == 3
    rejected = run(
        wh, "select format, reason, line_number from rejects where format like 'winevent%'"
    ).to_pylist()
    assert {
        "format": "winevent_csv",
        "reason": "event id '368x7' is not a number",
        "line_number": 11,
    } in rejected


def test_the_decimal_error_code_is_found_by_its_hex_form(loaded: tuple[Warehouse, IngestStats]) -> None:
    wh, _ = loaded
    hex_rows = run(
        wh,
        "select format, provider, event_id, message, event_data['4'] AS data4 from events "
        "where code = '0x800704D4' order by format, source_file",
    ).to_pylist()
    assert {r["format"] for r in hex_rows} == {"csv", "txt", "xml"}
    assert all(r["provider"] == "RasClient" and r["event_id"] == 20227 for r in hex_rows)
    # the rows only carry the decimal form: in the message, or in the unnamed 4th event data field
    assert all("-2147023660" in (r["message"] or "") or r["data4"] == "-2147023660" for r in hex_rows)
    assert "0x800704D4" not in "".join(r["message"] or "" for r in hex_rows)
    by_macro = run(wh, "select count(*) n from events where code = hresult(?)", ["-2147023660"]).to_pylist()
    assert by_macro == [{"n": len(hex_rows)}]
    by_decimal = run(wh, "select count(*) n from events where event_data['4'] = '-2147023660'").to_pylist()
    # both XML exports carry the event data, but hold the same event (RAS01's record): one row
    assert by_decimal[0]["n"] == 1


def test_seed_signatures_are_queryable(loaded: tuple[Warehouse, IngestStats]) -> None:
    wh, _ = loaded
    rows = run(
        wh,
        "select provider, event_id, any_value(code) code, any_value(alert_code) alert, any_value(target) target "
        "from events where provider in ('Schannel', 'LsaSrv') and level = 2 group by 1, 2 order by 1, 2",
    ).to_pylist()
    got = {(r["provider"], r["event_id"]): (r["code"], r["alert"], r["target"]) for r in rows}
    assert got[("Schannel", 36870)] == ("0x8009030D", None, None)
    assert got[("Schannel", 36887)][1] == 46 and got[("Schannel", 36888)][1] == 40
    assert got[("LsaSrv", 6041)][2] in {
        "TERMSRV/rds01.contoso.com",
        "TERMSRV/74.118.139.108",
        "TERMSRV/74.118.139.11",
    }
    json_rows = run(
        wh, "select count(*) n from events where json_extract_string(event_data_json, '$.AlertDesc') = '40'"
    ).to_pylist()
    assert json_rows[0]["n"] == 1  # 36888 in the Event Viewer XML (CSV and TXT carry no event data)


def test_ingesting_again_adds_nothing(loaded: tuple[Warehouse, IngestStats], shared_samples: Path) -> None:
    wh, _ = loaded
    before = run(wh, "select count(*) n from events").to_pylist()
    again = ingest_paths(wh, [SAMPLE_LOGS / "windows", shared_samples / "evtx"], options=OPTIONS)
    assert again.records_read == 0 and again.row_count == 0
    assert run(wh, "select count(*) n from events").to_pylist() == before

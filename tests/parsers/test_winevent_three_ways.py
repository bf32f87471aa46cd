"""The same events exported three ways (Event Viewer XML, CSV, TXT; each CSV/TXT in both of its
encodings) and through PowerShell's Export-Csv land as the same rows in every column the exports
have in common, the promoted ones (code, alert_code, target) included.

The files are sample_logs/windows/wec01_forwarded_events.* (a ForwardedEvents view exported on a
machine in Dubai, UTC+4) and ex01_getwinevent_export.csv; they hold the seed scenarios.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from parsers.base import FileParser, ParseOptions
from parsers.registry import SNIFF_BYTES, detect
from tests.conftest import SAMPLE_LOGS

WINDOWS = SAMPLE_LOGS / "windows"
OPTIONS = ParseOptions(timezone="Asia/Dubai")

#: What Event Viewer's CSV and TXT carry besides the message; level is compared by name because
#: Event Viewer prints level 0 (Security audits) as "Information", which reads back as 4.
COMMON = ["time_created", "provider", "event_id", "level_name", "task_name", "message"]
PROMOTED = ["code", "alert_code", "target"]


def events(name: str, options: ParseOptions = OPTIONS) -> pa.Table:
    path = WINDOWS / name
    parser_cls = detect(path.read_bytes()[:SNIFF_BYTES], path)
    assert parser_cls is not None
    parser = parser_cls(options)
    assert isinstance(parser, FileParser)
    tables = [b.result.tables["events"] for b in parser.parse_file(path, source=name) if b.result.tables]
    return pa.concat_tables(tables)


def keyed(table: pa.Table, columns: list[str]) -> dict[tuple[object, ...], dict[str, object]]:
    rows = {}
    for row in table.select(columns).to_pylist():
        # Event Viewer's text exports keep whole seconds of local time
        row["time_created"] = row["time_created"].replace(microsecond=0)
        rows[(row["time_created"], row["provider"], row["event_id"])] = row
    return rows


def test_xml_csv_and_txt_give_the_same_rows() -> None:
    xml = keyed(events("wec01_forwarded_events.xml"), COMMON + PROMOTED)
    assert len(xml) == 14
    for name in (
        "wec01_forwarded_events.csv",
        "wec01_forwarded_events_utf16.csv",
        "wec01_forwarded_events.txt",
        "wec01_forwarded_events_utf8.txt",
    ):
        other = keyed(events(name), COMMON + PROMOTED)
        assert other.keys() == xml.keys(), name
        for key, row in xml.items():
            expected = dict(row)
            if key[1] == "Microsoft-Windows-CAPI2":
                # CAPI2's message only says "see Details": its code lives in the XML's UserData
                assert expected["code"] == "0x80092013" and other[key]["code"] is None
                expected["code"] = None
            assert other[key] == expected, (name, key)


def test_the_seed_failures_are_found_in_every_export() -> None:
    for name in ("wec01_forwarded_events.xml", "wec01_forwarded_events.csv", "wec01_forwarded_events.txt"):
        rows = events(name).to_pylist()
        by = {(r["provider"], r["event_id"]): r for r in rows}
        assert by[("RasClient", 20227)]["code"] == "0x800704D4", name
        assert by[("Schannel", 36870)]["code"] == "0x8009030D", name
        assert (by[("Schannel", 36887)]["alert_code"], by[("Schannel", 36888)]["alert_code"]) == (46, 40), (
            name
        )
        assert by[("LsaSrv", 6041)]["target"] == "TERMSRV/rds01.contoso.com", name
        assert "UrlRoot in RSReportServer.config is not valid" in str(
            by[("Report Server Windows Service (MSSQLSERVER)", 110)]["message"]
        )
        assert "IPv4 and IPv6 do not match" in str(by[("Microsoft-Windows-RasSstp", 24)]["message"])


def test_powershell_export_matches_the_xml_in_every_column_it_has() -> None:
    columns = [*COMMON, *PROMOTED, "computer", "channel", "level", "record_id", "keywords", "qualifiers"]
    xml = keyed(events("wec01_forwarded_events.xml"), columns)
    ps = keyed(events("ex01_getwinevent_export.csv"), columns)
    assert len(ps) == 8
    for key, row in ps.items():
        expected = dict(xml[key])
        if key[1] == "Microsoft-Windows-CAPI2":
            expected["code"] = None
        if row["task_name"] is None:  # Get-WinEvent leaves TaskDisplayName empty for task 0
            expected["task_name"] = None
        assert row == expected, key


def test_local_time_follows_the_time_zone_option_and_is_recorded() -> None:
    dubai = events("wec01_forwarded_events.csv").to_pylist()[0]
    utc = events("wec01_forwarded_events.csv", ParseOptions(timezone="UTC")).to_pylist()[0]
    assert dubai["time_assumed_tz"] == "Asia/Dubai" and utc["time_assumed_tz"] == "UTC"
    assert utc["time_created"] - dubai["time_created"] == dt.timedelta(hours=4)
    assert events("wec01_forwarded_events.xml").column("time_assumed_tz").null_count == 14


def test_an_unknown_time_zone_is_a_clear_error(tmp_path: Path) -> None:
    parser_cls = detect((WINDOWS / "wec01_forwarded_events.csv").read_bytes()[:SNIFF_BYTES], tmp_path)
    assert parser_cls is not None
    parser = parser_cls(ParseOptions(timezone="Mars/Olympus"))
    assert isinstance(parser, FileParser)
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        list(parser.parse_file(WINDOWS / "wec01_forwarded_events.csv", source="x"))

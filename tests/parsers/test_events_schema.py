"""The shared part of the events table: code normalisation (SQL and Python agree), the derived
columns, local-time parsing, and parsers that never crash on hostile input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.base import FileParser, ParseOptions
from parsers.events_rows import EventColumns
from parsers.events_schema import SQL_MACROS, hex32, normalise_code
from parsers.winevent_csv import EventViewerCsvParser, EventViewerTxtParser, parse_local_time
from parsers.winevent_pscsv import PowerShellCsvParser
from parsers.winevent_xml import WinEventXmlParser

CON = duckdb.connect()
for _macro in SQL_MACROS:
    CON.execute(_macro)


def sql(expr: str, value: object) -> object:
    return CON.execute(f"select {expr}", [value]).fetchone()[0]  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("-2147023660", "0x800704D4"),
        ("0x800704d4", "0x800704D4"),
        ("2147943636", "0x800704D4"),
        ("0x00000000c000006d", "0xC000006D"),
        ("809", "0x00000329"),
        ("0x0", None),
        ("0", None),
        ("-2147483649", None),
        ("4294967296", None),
        ("abc", None),
        ("", None),
    ],
)
def test_codes_normalise_the_same_in_python_and_sql(text: str, code: str | None) -> None:
    assert normalise_code(text) == code
    assert sql("hresult(?)", text) == code


@given(st.integers(min_value=-(2**31), max_value=2**32 - 1).filter(bool))
def test_every_32_bit_value_has_one_form_whatever_it_was_written_as(n: int) -> None:
    canonical = hex32(n)
    forms = [str(n), f"0x{n & 0xFFFFFFFF:x}", f"0X{n & 0xFFFFFFFF:08X}"]
    for form in forms:
        assert normalise_code(form) == canonical
        assert sql("hresult(?)", form) == canonical


@given(st.text(max_size=14))
def test_python_and_sql_agree_on_any_text(text: str) -> None:
    assert sql("hresult(?)", text) == normalise_code(text)
    assert sql("hresult_strict(?)", text) == normalise_code(text, strict=True)


def derive(**values: object) -> dict[str, object]:
    rows = EventColumns()
    rows.add({"format": "xml", "source_file": "f", "source_offset": 0, **values})
    return rows.table().to_pylist()[0]


def test_code_comes_from_named_fields_before_values_and_message() -> None:
    row = derive(
        event_data={"Status": "0x0", "SubStatus": "0xc0000064", "Other": "0x80070005"},
        message="Status 0xC000006A",
    )
    assert row["code"] == "0xC0000064"  # a zero status is success; the next named field wins
    assert derive(event_data={"x": "-2147023660"})["code"] == "0x800704D4"  # any value, strict form
    assert derive(event_data={"x": "12345"})["code"] is None  # a plain number is not a code
    assert derive(message="The error code returned on failure is 809.")["code"] == "0x00000329"
    assert derive(message="handle 0x00001234, error 0xC0000022.")["code"] == "0xC0000022"


def test_alert_code_target_and_level_name() -> None:
    row = derive(event_data={"AlertDesc": "48"}, level=2)
    assert (row["alert_code"], row["level_name"]) == (48, "Error")
    row = derive(message="The TLS protocol defined fatal alert code is 70.", level_name="Warning")
    assert (row["alert_code"], row["level"]) == (70, 3)
    assert (
        derive(provider="LsaSrv", event_id=6041, event_data={"1": "TERMSRV/h", "2": "4"})["target"]
        == "TERMSRV/h"
    )
    assert derive(event_data={"TargetName": "-"})["target"] is None
    assert derive(event_data={"TargetServerName": "srv01"})["target"] == "srv01"
    assert derive(event_data={"a": "b"})["event_data_json"] == '{"a":"b"}'


UTC = ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("7/19/2016 4:13:15 PM", "Asia/Dubai", "2016-07-19T12:13:15+00:00"),  # en-US
        ("10/7/2016 06:38:24 PM", "UTC", "2016-10-07T18:38:24+00:00"),  # en-US, two-digit hour
        ("19/07/2016 16:13:15", "Asia/Dubai", "2016-07-19T12:13:15+00:00"),  # en-GB / fr-FR
        ("03/04/2016 16:13:15", "UTC", "2016-04-03T16:13:15+00:00"),  # 24-hour slashes: day first
        ("19.07.2016 16:13:15", "Europe/Berlin", "2016-07-19T14:13:15+00:00"),  # de-DE, summer time
        ("2016/07/19 16:13:15", "Asia/Tokyo", "2016-07-19T07:13:15+00:00"),  # ja-JP
        ("2016-07-19 16:13:15", "UTC", "2016-07-19T16:13:15+00:00"),  # sv-SE / ISO
        ("19-7-2016 16:13:15", "UTC", "2016-07-19T16:13:15+00:00"),  # nl-NL
        ("12/31/2016 12:00:00 AM", "UTC", "2016-12-31T00:00:00+00:00"),
        ("10/30/2016 2:30:00 AM", "Europe/Berlin", "2016-10-30T00:30:00+00:00"),  # ambiguous: first
        ("2016-07-19T12:13:15.1450000Z", "Asia/Dubai", "2016-07-19T12:13:15.145000+00:00"),  # explicit UTC
    ],
)
def test_local_times(text: str, zone: str, expected: str) -> None:
    parsed = parse_local_time(text, ZoneInfo(zone))
    assert parsed is not None
    assert parsed[0].isoformat() == expected
    assert parsed[1] is not text.endswith("Z")


@pytest.mark.parametrize(
    "text", ["13/13/2016 1:00:00 PM", "7/19/2016 13:00:00 PM", "yesterday", "2016-02-30 00:00:00"]
)
def test_impossible_times_are_none(text: str) -> None:
    assert parse_local_time(text, UTC) is None


HEADS = {
    EventViewerCsvParser: "\ufeffLevel,Date and Time,Source,Event ID,Task Category\r\n",
    EventViewerTxtParser: "Level\tDate and Time\tSource\tEvent ID\tTask Category\r\n",
    PowerShellCsvParser: '#TYPE System.Diagnostics.Eventing.Reader.EventLogRecord\r\n"Message","Id","TimeCreated"\r\n',
    WinEventXmlParser: "<Events>",
}
PIECES = st.sampled_from(
    [
        "Error,7/19/2016 4:13:15 PM,Schannel,36870,None,msg\r\n",
        'Error\t7/19/2016 4:13:15 PM\tSchannel\t36870\tNone\t"multi\r\nline"\r\n',
        '"a ""quoted"" message","36870","7/19/2016 4:13:15 PM"\r\n',
        "<Event><System><EventID>1</EventID><TimeCreated SystemTime='2016-07-19T12:13:15Z'/></System></Event>",
        "<Event><System>",
        "</Event>",
        '"',
        "\r\n",
        "\x00",
        "é",
    ]
)


@settings(max_examples=int(__import__("os").environ.get("KNOWNFIX_EXAMPLES", "60")), deadline=None)
@given(
    st.sampled_from(sorted(HEADS, key=lambda c: c.name)),
    st.lists(st.one_of(PIECES, st.text(max_size=8)), max_size=12),
    st.booleans(),
)
def test_hostile_input_never_crashes_and_always_reconciles(
    parser_cls: type[FileParser], parts: list[str], utf16: bool
) -> None:
    text = HEADS[parser_cls] + "".join(parts)
    data = (
        (b"\xff\xfe" + text.encode("utf-16-le", "surrogatepass"))
        if utf16
        else text.encode("utf-8", "surrogatepass")
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x"
        path.write_bytes(data)
        positions = []
        for batch in parser_cls(ParseOptions()).parse_file(path, source="x", batch_records=2):
            assert batch.result.reconciles()
            positions.append(batch.position)
        assert positions == sorted(set(positions)) and positions


def test_event_columns_round_trip_types() -> None:
    rows = EventColumns()
    when = dt.datetime(2016, 7, 19, 12, 13, 15, tzinfo=dt.UTC)
    rows.add(
        {
            "time_created": when,
            "event_id": 5,
            "event_data": {"a": "1"},
            "format": "csv",
            "source_file": "f",
            "source_offset": 3,
        }
    )
    row = rows.table().to_pylist()[0]
    assert (row["time_created"], row["event_id"], row["event_data"], row["source_offset"]) == (
        when,
        5,
        [("a", "1")],
        3,
    )

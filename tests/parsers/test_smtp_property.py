"""Property: any SMTP protocol-log line Exchange could write parses back to exactly its fields.

Fields are drawn with hostile content (commas, quotes, ``""`` escapes, leading blanks, non-ASCII,
words that CSV readers like to turn into nulls) and written the way Exchange writes them (CSV
quoting only where needed, CRLF). Both the bulk path and the exact per-line path must give back
every field, and the counts must reconcile.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.text import line_starts, lines_array
from parsers.w3c import SmtpLogParser
from parsers.w3c_header import SMTP_FIELDS, layout_for
from parsers.w3c_split import split_exact

HEADER = (
    "#Software: Microsoft Exchange Server\r\n#Version: 15.2.1118.7\r\n#Log-type: SMTP Receive Protocol Log\r\n"
    "#Date: 2023-01-11T16:00:04.113Z\r\n#Fields: " + ",".join(SMTP_FIELDS) + "\r\n"
)

# no CR/LF (Exchange never writes them inside a field) and no lone surrogates (not encodable)
_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"),
    max_size=40,
)
_hostile = st.one_of(
    _text,
    st.sampled_from(
        [
            '"',
            '""',
            ",",
            '","',
            " leading",
            "trailing ",
            "NULL",
            "N/A",
            "nan",
            "-",
            "#Fields: x",
            "é,ü,ß",
            'Ω"≈"ç',
        ]
    ),
    st.lists(st.sampled_from(['"', ",", "a", " ", "日本", "\t"]), max_size=12).map("".join),
)
_endpoint = st.one_of(
    st.just(""),
    st.builds(
        lambda a, b, p: f"10.{a}.{b}.1:{p}", st.integers(0, 255), st.integers(0, 255), st.integers(1, 65535)
    ),
    st.builds(lambda p: f"[2001:db8::1]:{p}", st.integers(1, 65535)),
    _hostile,
)
_time = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31)).map(
    lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000, tzinfo=dt.UTC)
)
_row = st.fixed_dictionaries(
    {
        "date_time": _time,
        "connector_id": _hostile,
        "session_id": _hostile,
        "sequence_number": st.integers(0, 2**40),
        "local_endpoint": _endpoint,
        "remote_endpoint": _endpoint,
        "event": st.one_of(st.sampled_from(["+", "-", ">", "<", "*"]), _hostile),
        "data": _hostile,
        "context": _hostile,
    }
)


def _line(row: dict[str, object]) -> str:
    buf = io.StringIO()
    t = row["date_time"]
    assert isinstance(t, dt.datetime)
    stamp = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
    csv.writer(buf, lineterminator="\r\n").writerow([stamp, *(row[k] for k in list(_row_keys())[1:])])
    return buf.getvalue()


def _row_keys() -> list[str]:
    return [f.replace("-", "_") for f in SMTP_FIELDS]


def _expected(row: dict[str, object]) -> dict[str, object]:
    """What the table must hold: the same values, with empty text stored as null."""
    return {k: (None if v == "" else v) for k, v in row.items()}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_row, min_size=1, max_size=25))
def test_fields_round_trip(rows: list[dict[str, object]]) -> None:
    body = "".join(_line(r) for r in rows)
    data = (HEADER + body).encode("utf-8")
    parser = SmtpLogParser()
    result = parser.parse(data, source="RECV.LOG", base_offset=0, state=parser.new_state())

    assert result.reconciles()
    assert result.rejects.num_rows == 0, result.rejects.to_pylist()
    table = result.tables["smtp"].select(_row_keys())
    assert table.to_pylist() == [_expected(r) for r in rows]
    # the raw column keeps each line byte for byte (without CRLF)
    assert result.tables["smtp"]["raw"].to_pylist() == body.split("\r\n")[:-1]

    # the exact path, which re-reads lines the bulk path cannot split, agrees field for field
    lines_data = body.encode("utf-8")
    text = lines_array(lines_data, line_starts(lines_data))
    layout = layout_for(list(SMTP_FIELDS), ",", "SMTP Receive Protocol Log", None)
    columns, good, rejects = split_exact(text, np.arange(len(rows)), layout)
    assert rejects == []
    assert good.tolist() == list(range(len(rows)))
    for name in _row_keys()[1:]:
        expected = [_expected(r)[name] for r in rows]
        if name == "sequence_number":
            expected = [str(v) for v in expected]
        assert pa.chunked_array(columns[name]).to_pylist() == expected

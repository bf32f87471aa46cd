"""Reading W3C logs as a stream: counts reconcile, any cut into pieces gives the same rows, a resumed
file (``skip`` then ``parse``) knows the header in force, and the bulk path keeps its speed when a
few lines are broken.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.base import ParseResult
from parsers.text import line_starts, lines_array
from parsers.w3c import SmtpLogParser, W3CParser, W3CState, directive_lines
from parsers.w3c_header import SMTP_FIELDS, layout_for
from parsers.w3c_split import Lines, bulk_split, split_exact, stray_cr_mask
from tests.conftest import SAMPLE_LOGS

HEADER = (
    "#Software: Microsoft Exchange Server\r\n#Version: 15.1.466.34\r\n#Log-type: SMTP Send Protocol Log\r\n"
    "#Date: 2016-07-19T12:13:01.020Z\r\n#Fields: " + ",".join(SMTP_FIELDS) + "\r\n"
)
GOOD = (
    "2016-07-19T12:13:{s:02d}.{ms:03d}Z,Outbound to Office 365,08D3AFC581A92D{n:02X},{n},10.1.2.22:22154,"
    '104.47.40.36:25,<,"250 2.6.0 <{n}@contoso.com> [InternalId={n}, Hostname=BN3] Queued mail for delivery",\r\n'
)
BROKEN = [
    "2016-07-19T12:13:15.145Z,Outbound to Office 365,08D3AFC581A92DD3,8,,,*\r\n",  # cut short
    '2016-07-19T12:13:15.145Z,Outbound to Office 365,08D3AFC581A92DD3,8,,,*,"unterminated,\r\n',
    "\r\n",  # blank
    "not-a-time,Outbound to Office 365,08D3AFC581A92DD3,8,,,*,,TLS negotiation failed\r\n",
    "2016-07-19T12:13:15.145Z,a,b,1,,,*,,x,y,z\r\n",  # too many fields
]


def mixed_log(n: int, seed: int) -> tuple[bytes, dict[str, int]]:
    """A send log of good lines with broken lines and service restarts (repeated headers) mixed in."""
    rng = random.Random(seed)
    parts, counts = [HEADER], {"good": 0, "broken": 0, "header": 5}
    for i in range(n):
        roll = rng.random()
        if roll < 0.03:
            parts.append(rng.choice(BROKEN))
            counts["broken"] += 1
        elif roll < 0.04:
            parts.append(HEADER)
            counts["header"] += 5
        else:
            parts.append(GOOD.format(s=i % 60, ms=i % 1000, n=i % 256))
            counts["good"] += 1
    return "".join(parts).encode(), counts


def parse_pieces(data: bytes, cuts: list[int], parser: W3CParser | None = None) -> list[ParseResult]:
    """Parse ``data`` in pieces that end after the given line counts, with one carried state."""
    parser = parser or SmtpLogParser()
    state = parser.new_state()
    ends = (np.flatnonzero(np.frombuffer(data, np.uint8) == 10) + 1).tolist()
    bounds = sorted({0, len(data), *(ends[c - 1] for c in cuts if 0 < c <= len(ends))})
    out = []
    for start, end in itertools.pairwise(bounds):
        out.append(parser.parse(data[start:end], source="SEND.LOG", base_offset=start, state=state))
    return out


def rows_of(results: list[ParseResult], table: str = "smtp") -> list[dict[str, object]]:
    tables = [r.tables[table] for r in results if table in r.tables]
    return pa.concat_tables(tables).to_pylist() if tables else []


def rejects_of(results: list[ParseResult]) -> list[dict[str, object]]:
    return pa.concat_tables([r.rejects for r in results]).to_pylist()


def test_counts_reconcile_on_a_mixed_file() -> None:
    data, counts = mixed_log(3000, seed=1)
    (result,) = parse_pieces(data, [])
    assert result.records_read == data.count(b"\n") == sum(counts.values())
    assert result.reconciles()
    assert result.tables["smtp"].num_rows == counts["good"]
    assert result.tables["directives"].num_rows == counts["header"]
    assert result.rejects.num_rows == counts["broken"]
    reasons = {r["reason"].split(":")[0] for r in result.rejects.to_pylist()}
    assert reasons == {
        "expected 9 fields (as the #Fields header says), found 7",
        "unterminated quoted field (odd number of '\"')",
        "blank line",
        "bad date-time",
        "expected 9 fields (as the #Fields header says), found 11",
    }
    # every line is accounted for once: offsets of rows, directives and rejects are all distinct
    offsets = [
        r["source_offset"] for t in result.tables.values() for r in t.select(["source_offset"]).to_pylist()
    ]
    offsets += [r["source_offset"] for r in result.rejects.to_pylist()]
    assert (
        sorted(offsets)
        == (np.concatenate(([0], np.flatnonzero(np.frombuffer(data, np.uint8) == 10)[:-1] + 1))).tolist()
    )


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(1, 400), max_size=12), st.integers(0, 5))
def test_any_cut_into_pieces_gives_the_same_rows(cuts: list[int], seed: int) -> None:
    data, _ = mixed_log(400, seed)
    whole = parse_pieces(data, [])
    pieces = parse_pieces(data, cuts)
    assert rows_of(pieces) == rows_of(whole)
    assert rows_of(pieces, "directives") == rows_of(whole, "directives")
    assert rejects_of(pieces) == rejects_of(whole)
    assert sum(r.records_read for r in pieces) == whole[0].records_read


def test_sample_logs_in_pieces_match_one_pass() -> None:
    # the realistic samples, cut every 7 lines (headers, restarts, BOM, IIS spaces included)
    for path in sorted((SAMPLE_LOGS / "exchange").rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        parser = W3CParser()
        whole, pieces = parse_pieces(data, [], parser), parse_pieces(data, list(range(7, 400, 7)), parser)
        for table in {t for r in whole for t in r.tables}:
            assert [_set(r) for r in rows_of(pieces, table)] == [_set(r) for r in rows_of(whole, table)], path
        assert rejects_of(pieces) == rejects_of(whole), path


def _set(row: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in row.items() if v is not None}


def test_skip_then_parse_resumes_with_the_header_in_force() -> None:
    data, _ = mixed_log(2000, seed=3)
    parser = SmtpLogParser()
    (whole,) = parse_pieces(data, [], parser)
    ends = (np.flatnonzero(np.frombuffer(data, np.uint8) == 10) + 1).tolist()
    for cut in (1, 5, 6, 777, 1500):
        state = parser.new_state()
        parser.skip(data[: ends[cut - 1]], state=state)
        assert isinstance(state, W3CState) and state.line_number == cut
        tail = parser.parse(data[ends[cut - 1] :], source="SEND.LOG", base_offset=ends[cut - 1], state=state)
        expected = [r for r in whole.tables["smtp"].to_pylist() if r["line_number"] > cut]
        assert tail.tables["smtp"].to_pylist() == expected
        assert tail.rejects.to_pylist() == [r for r in whole.rejects.to_pylist() if r["line_number"] > cut]


def test_skip_keeps_a_broken_fields_header_in_force() -> None:
    data = (HEADER + "#Fields:\r\n" + GOOD.format(s=1, ms=2, n=3)).encode()
    parser = SmtpLogParser()
    state = parser.new_state()
    parser.skip(data[: data.index(b"#Fields:\r\n") + 10], state=state)
    tail = parser.parse(data[data.index(b"#Fields:\r\n") + 10 :], source="x", base_offset=0, state=state)
    assert tail.rejects.to_pylist()[0]["reason"].startswith("the #Fields header in force is unusable")


def _lines(data: bytes) -> Lines:
    starts = line_starts(data)
    text = lines_array(data, starts)
    empty = np.array([t == "" for t in text.to_pylist()], dtype=bool)
    no_bom = np.zeros(len(starts), dtype=bool)
    return Lines(
        data, starts, np.append(starts[1:], len(data)), text, stray_cr_mask(data, starts), no_bom, empty
    )


def test_bulk_path_keeps_good_lines_when_some_are_refused() -> None:
    good = [GOOD.format(s=i % 60, ms=i, n=i % 256) for i in range(200)]
    body = [*good[:50], BROKEN[0], BROKEN[4], *good[50:], BROKEN[0]]
    data = "".join(body).encode()
    lines = _lines(data)
    layout = layout_for(list(SMTP_FIELDS), ",", "SMTP Send Protocol Log", None)
    got = bulk_split(lines, np.arange(len(body)), layout)
    assert got is not None, "one refused line must not send the whole segment to the slow path"
    columns, ok, refused = got
    assert refused.tolist() == [50, 51, 202]
    assert ok.tolist() == [i for i in range(len(body)) if i not in (50, 51, 202)]
    exact, exact_ok, _ = split_exact(lines.text, ok, layout)
    assert exact_ok.tolist() == ok.tolist()
    for name in layout.columns:
        assert columns[name].to_pylist() == exact[name].to_pylist()


def test_bulk_path_declines_when_a_quote_swallows_lines() -> None:
    # pyarrow lets an unterminated quote run into the next lines; the row count gives it away
    good = [GOOD.format(s=i % 60, ms=i, n=i) for i in range(20)]
    data = "".join([*good[:10], BROKEN[1], *good[10:]]).encode()
    lines = _lines(data)
    layout = layout_for(list(SMTP_FIELDS), ",", "SMTP Send Protocol Log", None)
    assert bulk_split(lines, np.arange(21), layout) is None
    # the parser then sets the odd-quoted line aside and still splits the rest in bulk
    result = SmtpLogParser().parse(HEADER.encode() + data, source="x", base_offset=0, state=W3CState())
    assert result.tables["smtp"].num_rows == 20
    assert [r["line_number"] for r in result.rejects.to_pylist()] == [16]


_junk_line = st.one_of(
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"")),
    st.sampled_from(
        [
            b"#Fields: a,b",
            b"#Fields: date time x",
            b"#Software: X",
            b"#",
            b"#:",
            b'"',
            b"\xef\xbb\xbf#Log-type: Y",
        ]
    ),
    st.builds(lambda s: GOOD.format(s=1, ms=2, n=3).encode()[:s], st.integers(0, 200)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_junk_line, max_size=30), st.booleans())
def test_any_bytes_reconcile_and_never_raise(lines: list[bytes], with_header: bool) -> None:
    data = (HEADER.encode() if with_header else b"") + b"\n".join(lines)
    parser = W3CParser()
    result = parser.parse(data, source="junk.log", base_offset=0, state=parser.new_state())
    assert result.reconciles()
    assert result.records_read == len(line_starts(data))


def test_skip_leaves_the_state_parse_leaves() -> None:
    # the realistic samples (restarts, BOMs, IIS spaces), skipped and parsed in the same pieces
    for path in sorted((SAMPLE_LOGS / "exchange").rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        ends = [0, *(np.flatnonzero(np.frombuffer(data, np.uint8) == 10) + 1).tolist(), len(data)]
        parser = W3CParser()
        parsed, skipped = parser.new_state(), parser.new_state()
        for lo, hi in itertools.pairwise(sorted({*ends[::5], len(data)})):
            if hi > lo:
                parser.parse(data[lo:hi], source="x", base_offset=lo, state=parsed)
                parser.skip(data[lo:hi], state=skipped)
                assert skipped == parsed, (path, lo)


def test_directive_lines_finds_headers_after_a_bom_and_at_the_start() -> None:
    data = b"#Software: A\r\nx,#y\r\n\xef\xbb\xbf#Fields: a,b\r\n #no\n#Date: 1\n#"
    assert directive_lines(data) == [b"#Software: A", b"\xef\xbb\xbf#Fields: a,b", b"#Date: 1", b"#"]
    assert directive_lines(b"\xef\xbb\xbf#Version: 1") == [b"\xef\xbb\xbf#Version: 1"]
    assert directive_lines(b"a,b\n") == []

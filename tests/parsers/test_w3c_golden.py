"""Golden files of the W3C formats: each ``tests/golden/w3c/*.log`` is detected from its content,
parsed, and must give exactly the rows, directive rows and rejects of the ``.jsonl`` beside it.

The inputs hold the seeds' exact failure lines (``TLS negotiation failed with error
UnknownCredentials`` with its certificate dump, and ``451 4.4.0 Primary target IP address responded
with: "451 5.7.3 Cannot achieve Exchange Server authentication."``), written with the ASCII quotes a
real log has, and deliberately broken lines. Set ``KNOWNFIX_REGEN=1`` to rewrite the expected files
after a deliberate change, then review the diff.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from parsers.base import ParseResult, StreamParser
from tests import golden_files
from tests.conftest import ROOT
from tests.golden_files import detected, table_rows

GOLDEN = ROOT / "tests" / "golden" / "w3c"
INPUTS = sorted(GOLDEN.glob("*.log"))

#: The format each input must be detected as (from its directives; file names play no part).
EXPECTED_FORMAT = {
    "connectivity.log": "w3c",
    "httpproxy_ews.log": "w3c",
    "iis_w3svc1.log": "w3c",
    "message_tracking_exchange2010.log": "exchange_msgtrk",
    "smtp_receive_mixed.log": "exchange_smtp",
    "smtp_send_451_exchange_auth.log": "exchange_smtp",
    "smtp_send_unknown_credentials.log": "exchange_smtp",
}


def records(results: list[ParseResult]) -> list[dict[str, object]]:
    """Rows of every table and the rejects (as table ``rejects``), in file order, as JSON-able dicts."""
    out: list[dict[str, object]] = []
    for result in results:
        out.extend(table_rows(result))
        out.extend({"table": "rejects", **r} for r in result.rejects.to_pylist())
    out.sort(key=lambda r: int(str(r["source_offset"])))
    return out


def _set(record: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in record.items() if v is not None}


def parse_in_pieces(path: Path, cuts: list[int]) -> tuple[str, list[ParseResult]]:
    """Parse ``path`` as a tailer would: pieces of complete lines ending at the given line counts."""
    data = path.read_bytes()
    parser = detected(path)
    assert isinstance(parser, StreamParser)
    state = parser.new_state()
    ends = [i + 1 for i, b in enumerate(data) if b == 0x0A]
    bounds = [0, *(ends[c - 1] for c in cuts if 0 < c <= len(ends)), len(data)]
    results = []
    for start, end in itertools.pairwise(bounds):
        if end > start:
            results.append(parser.parse(data[start:end], source=path.name, base_offset=start, state=state))
    return parser.name, results


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_golden(path: Path) -> None:
    name, results = parse_in_pieces(path, [])
    assert name == EXPECTED_FORMAT[path.name]
    assert all(r.reconciles() for r in results), "lines read != rows + rejects"
    got = records(results)
    assert len(got) == path.read_bytes().count(b"\n") + (0 if path.read_bytes().endswith(b"\n") else 1)
    expected = golden_files.expected(path.with_suffix(".jsonl"), got)
    assert got == expected


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_line_by_line_gives_the_same_records(path: Path) -> None:
    """A tailer feeding one line at a time (header carried in the state) gets the same records."""
    lines = path.read_bytes().count(b"\n")
    _, whole = parse_in_pieces(path, [])
    _, pieces = parse_in_pieces(path, list(range(1, lines + 1)))
    # a header change inside one piece yields one table with the union of columns (nulls where a
    # row's header lacked the column); piece by piece, separate tables: compare the values only
    assert [_set(r) for r in records(pieces)] == [_set(r) for r in records(whole)]
    assert sum(r.records_read for r in pieces) == sum(r.records_read for r in whole)

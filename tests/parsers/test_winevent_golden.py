"""Golden files of the Windows event formats: each input under tests/golden/events/ is detected
from its content, parsed, and must give exactly the rows and rejects of the ``.jsonl`` beside it.

Inputs are written from the formats' documentation (see each parser's docstring) for the seed
scenarios, each covering a variant: a wevtutil stream without namespace, an Event Viewer XML in
UTF-16 with a prefixed namespace, an Event Viewer CSV, a Security-log TXT (``Keywords`` column,
en-GB dates, UTF-16), a PowerShell 7 ``Export-Csv -Delimiter ';'`` with de-DE dates, each with
deliberately broken records. The exports were made on a machine in Dubai (UTC+4).
The ``.evtx`` golden is the real WEC sample from ../shared/samples (origin: github
omerbenamram/evtx, samples/MSExchange_Management_wec.evtx).
Set ``KNOWNFIX_REGEN=1`` to rewrite the expected files after a deliberate change, then review the diff.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from parsers.base import FileParser, ParseOptions, ParseResult
from parsers.registry import SNIFF_BYTES, detect
from tests.conftest import ROOT, SHARED_SAMPLES

GOLDEN = ROOT / "tests" / "golden" / "events"
WEC_EVTX = SHARED_SAMPLES / "evtx" / "omerbenamram-evtx_MSExchange_Management_wec.evtx"
INPUTS = [*sorted(p for p in GOLDEN.iterdir() if p.suffix != ".jsonl"), WEC_EVTX]
OPTIONS = ParseOptions(timezone="Asia/Dubai")

EXPECTED_FORMAT = {
    "eventviewer.csv": "winevent_csv",
    "eventviewer_prefixed_utf16.xml": "winevent_xml",
    "eventviewer_security_engb.txt": "winevent_txt",
    "getwinevent_ps7_semicolon.csv": "winevent_pscsv",
    "wevtutil_unnamespaced.xml": "winevent_xml",
    WEC_EVTX.name: "evtx",
}


def _plain(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def parse(path: Path, batch_records: int = 50_000) -> tuple[str, list[dict[str, object]], list[ParseResult]]:
    parser_cls = detect(path.read_bytes()[:SNIFF_BYTES], path)
    assert parser_cls is not None
    parser = parser_cls(OPTIONS)
    assert isinstance(parser, FileParser)
    lines: list[dict[str, object]] = []
    results = []
    positions = []
    for batch in parser.parse_file(path, source=path.name, batch_records=batch_records):
        results.append(batch.result)
        positions.append(batch.position)
        for table, rows in sorted(batch.result.tables.items()):
            lines.extend({"table": table, **{k: _plain(v) for k, v in r.items()}} for r in rows.to_pylist())
        lines.extend({"reject": r["reason"], **r} for r in batch.result.rejects.to_pylist())
    assert positions == sorted(set(positions)), "batch positions must grow strictly"
    lines.sort(key=lambda x: (int(str(x["source_offset"])), "reject" in x))
    return parser.name, lines, results


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_golden(path: Path) -> None:
    name, lines, results = parse(path)
    assert name == EXPECTED_FORMAT[path.name]
    assert all(r.reconciles() for r in results), "records read != rows + rejects"
    expected_file = GOLDEN / (path.name + ".jsonl")
    if os.environ.get("KNOWNFIX_REGEN"):
        expected_file.write_text(
            "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8"
        )
    expected = [json.loads(x) for x in expected_file.read_text(encoding="utf-8").splitlines()]
    assert json.loads(json.dumps(lines)) == expected


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_batches_of_one_give_the_same_rows(path: Path) -> None:
    _, whole, _ = parse(path)
    _, small, results = parse(path, batch_records=1)
    assert small == whole
    assert all(r.reconciles() for r in results)


@pytest.mark.parametrize(
    ("name", "encoding"),
    [
        ("eventviewer.csv", "utf-8"),
        ("eventviewer_prefixed_utf16.xml", "utf-16-le"),
        ("eventviewer_security_engb.txt", "utf-16-le"),
        ("getwinevent_ps7_semicolon.csv", "utf-8"),
        ("wevtutil_unnamespaced.xml", "utf-8"),
    ],
)
def test_offsets_and_lines_point_at_the_record(name: str, encoding: str) -> None:
    """source_offset is the byte where the record starts (UTF-16 included), line_number its line."""
    data = (GOLDEN / name).read_bytes()
    text = data.decode(encoding.replace("-le", ""), errors="replace").lstrip("\ufeff")
    _, lines, _ = parse(GOLDEN / name)
    for line in lines:
        offset = int(str(line["source_offset"]))
        at = data[offset : offset + 400].decode(encoding, errors="ignore")
        assert at.strip(), (name, offset)
        raw = str(line["raw"])
        assert at.startswith(raw[:20]) or raw[:20] in at[:40], (name, offset, at[:40], raw[:40])
        assert text.splitlines()[int(str(line["line_number"])) - 1].strip().startswith(raw.strip()[:10])


def test_the_seed_failures_are_promoted() -> None:
    """The columns rules search are filled from event data (XML) and from the message (CSV)."""
    _, xml, _ = parse(GOLDEN / "eventviewer_prefixed_utf16.xml")
    by_id = {r["event_id"]: r for r in xml}
    assert by_id[36870]["code"] == "0x8009030D"
    assert (by_id[36887]["alert_code"], by_id[36888]["alert_code"]) == (46, 40)
    assert by_id[53]["code"] == "0x80092013"  # CAPI2: <Result value="80092013"> in UserData
    assert dict(by_id[53]["event_data"])["RevocationStatus@error"] == "80092013"  # type: ignore[call-overload]
    _, csv, _ = parse(GOLDEN / "eventviewer.csv")
    ras = next(r for r in csv if r.get("event_id") == 20227)
    assert ras["code"] == "0x800704D4" and "-2147023660" in str(ras["message"])
    _, ps, _ = parse(GOLDEN / "getwinevent_ps7_semicolon.csv")
    assert next(r for r in ps if r.get("event_id") == 6041)["target"] == "TERMSRV/rds01.contoso.com"

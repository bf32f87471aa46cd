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

import json
from pathlib import Path

import pytest

from parsers.base import ParseOptions
from tests import golden_files
from tests.conftest import ROOT, SHARED_SAMPLES, require_shared_samples
from tests.golden_files import Parsed, parse_file

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


def parse(path: Path, batch_records: int = 50_000) -> Parsed:
    if path.is_relative_to(SHARED_SAMPLES):
        require_shared_samples()
    parsed = parse_file(path, OPTIONS, batch_records)
    assert parsed.positions == sorted(set(parsed.positions)), "batch positions must grow strictly"
    return parsed


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_golden(path: Path) -> None:
    parsed = parse(path)
    assert parsed.name == EXPECTED_FORMAT[path.name]
    assert all(r.reconciles() for r in parsed.results), "records read != rows + rejects"
    # the expected file is beside the inputs (the .evtx is not); JSON has no tuples (event_data)
    expected = golden_files.expected(GOLDEN / (path.name + ".jsonl"), parsed.lines)
    assert json.loads(json.dumps(parsed.lines)) == expected


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_batches_of_one_give_the_same_rows(path: Path) -> None:
    whole = parse(path).lines
    small = parse(path, batch_records=1)
    assert small.lines == whole
    assert all(r.reconciles() for r in small.results)


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
    lines = parse(GOLDEN / name).lines
    for line in lines:
        offset = int(str(line["source_offset"]))
        at = data[offset : offset + 400].decode(encoding, errors="ignore")
        assert at.strip(), (name, offset)
        raw = str(line["raw"])
        assert at.startswith(raw[:20]) or raw[:20] in at[:40], (name, offset, at[:40], raw[:40])
        assert text.splitlines()[int(str(line["line_number"])) - 1].strip().startswith(raw.strip()[:10])


def test_the_seed_failures_are_promoted() -> None:
    """The columns rules search are filled from event data (XML) and from the message (CSV)."""
    xml = parse(GOLDEN / "eventviewer_prefixed_utf16.xml").lines
    by_id = {r["event_id"]: r for r in xml}
    assert by_id[36870]["code"] == "0x8009030D"
    assert (by_id[36887]["alert_code"], by_id[36888]["alert_code"]) == (46, 40)
    assert by_id[53]["code"] == "0x80092013"  # CAPI2: <Result value="80092013"> in UserData
    assert dict(by_id[53]["event_data"])["RevocationStatus@error"] == "80092013"  # type: ignore[call-overload]
    csv = parse(GOLDEN / "eventviewer.csv").lines
    ras = next(r for r in csv if r.get("event_id") == 20227)
    assert ras["code"] == "0x800704D4" and "-2147023660" in str(ras["message"])
    ps = parse(GOLDEN / "getwinevent_ps7_semicolon.csv").lines
    assert next(r for r in ps if r.get("event_id") == 6041)["target"] == "TERMSRV/rds01.contoso.com"

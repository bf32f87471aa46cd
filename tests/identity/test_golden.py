"""Golden files of the identity formats: each input under tests/golden/identity/ is detected from
its content, parsed, and must give exactly the rows and rejects of the ``.jsonl`` beside it.

The inputs are written from the formats' documentation and public examples (see each parser's
docstring); they hold the seed's exact error text (the ``[ProxyAddresses smtp:...]`` sentence and
the Hybrid wizard's ``HybridDomains`` failure) and deliberately broken records.
Set ``KNOWNFIX_REGEN=1`` to rewrite the expected files after a deliberate change, then review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import golden_files
from tests.conftest import ROOT
from tests.golden_files import parse_file

GOLDEN = ROOT / "tests" / "golden" / "identity"
INPUTS = sorted(p for p in GOLDEN.iterdir() if p.suffix != ".jsonl")

#: The format each input must be detected as (from content; file names play no part).
EXPECTED_FORMAT = {
    "20160719_121301.log": "hybrid_wizard",
    "20171023_113940.log": "hybrid_wizard",
    "aad_users_mg_utf16.csv": "aad_users_csv",
    "aad_users_msol.csv": "aad_users_csv",
    "ad_users.csv": "ad_users_csv",
    "connect_health_sync_errors.csv": "sync_errors_csv",
    "csexport_aad_errors.xml": "csexport_xml",
    "csexport_truncated.xml": "csexport_xml",
    "graph_provisioning_errors.json": "sync_errors_json",
    "hcw_seed_paste.log": "hybrid_wizard",
    "identity_sync_error_report.eml": "sync_error_mail",
    "msol_provisioning_errors.csv": "sync_errors_csv",
    "sync_error_report_html.eml": "sync_error_mail",
}


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_golden(path: Path) -> None:
    parsed = parse_file(path)
    assert parsed.name == EXPECTED_FORMAT[path.name]
    assert all(r.reconciles() for r in parsed.results), "records read != rows + rejects"
    expected = golden_files.expected(path.with_suffix(path.suffix + ".jsonl"), parsed.lines)
    assert parsed.lines == expected


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_small_batches_give_the_same_rows(path: Path) -> None:
    """Batches of one record: same rows, strictly growing positions, every batch reconciles."""
    whole = parse_file(path).lines
    small = parse_file(path, batch_records=1)
    assert small.lines == whole
    assert all(r.reconciles() for r in small.results)
    assert all(a < b for a, b in zip(small.positions, small.positions[1:], strict=False))


def test_seed_texts_are_split() -> None:
    """The seed's sentence gives attribute and value; the wizard's error keeps its whole text."""
    rows = parse_file(GOLDEN / "identity_sync_error_report.eml").lines
    seed = next(r for r in rows if r.get("upn") == "john.smith@contoso.com")
    assert (seed["error_type"], seed["attribute"], seed["conflicting_value"]) == (
        "AttributeValueMustBeUnique",
        "ProxyAddresses",
        "smtp:john@contoso.com",
    )
    hcw = parse_file(GOLDEN / "20160719_121301.log").lines
    failed = next(r for r in hcw if r.get("level") == "ERROR")
    assert failed["subtask"] == "Configure Mail Flow"
    assert failed["cmdlet"] == "Set-OnPremisesOrganization"
    assert "A parameter cannot be found that matches parameter name 'HybridDomains'." in str(
        failed["message"]
    )
    assert str(failed["message"]).count("\n") == 7  # the exception text and all five stack frames


def test_offsets_point_at_the_record_in_utf16_and_utf8() -> None:
    """source_offset is the byte where the record starts, also in a UTF-16 (-Encoding Unicode) file."""
    for name, encoding, first in (
        ("aad_users_mg_utf16.csv", "utf-16-le", '"'),
        ("ad_users.csv", "utf-8", '"'),
    ):
        data = (GOLDEN / name).read_bytes()
        lines = parse_file(GOLDEN / name).lines
        for line in lines:
            offset = int(str(line["source_offset"]))
            text = data[offset : offset + 200].decode(encoding, errors="ignore")
            assert text.startswith(first), (name, offset, text[:40])
            upn = line.get("user_principal_name")
            if upn:
                assert str(upn) in text

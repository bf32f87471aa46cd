"""The rules commands as a user runs them: exit codes, one-line errors, hits with their fixes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from knownfix.cli import app
from tests.conftest import SAMPLE_LOGS
from tests.rules.helpers import FIX, SEND_HEADER, rules_file, unknown_credentials


def knownfix(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "knownfix.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


BROKEN = (
    "rules:\n"
    "  - id: broken-example\n"
    "    title: an example that does not match\n"
    "    table: smtp\n"
    "    match: {tls_error: NoCredentials}\n" + FIX + "    examples:\n"
    "      match:\n"
    "        - text: |\n"
    + "".join(f"            {line}\n" for line in (SEND_HEADER + unknown_credentials(1)).splitlines())
    + "        - text: 'not an Exchange log at all'\n"
)


def test_rules_test_fails_on_a_broken_example(tmp_path: Path) -> None:
    path = rules_file(tmp_path, BROKEN)
    proc = knownfix("rules", "test", str(path), "--rule", "broken-example", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL broken-example example 1 (must match): did not match (1 row(s) in smtp)" in proc.stdout
    assert (
        "FAIL broken-example example 2 (must match): did not parse into table smtp (it gave lines: 1)"
        in proc.stdout
    )
    assert "0 of 2 examples passed" in proc.stdout


def test_rules_test_passes_on_a_library_rule_with_its_real_parser(tmp_path: Path) -> None:
    proc = knownfix("rules", "test", "--rule", "exchange-tls-unknown-credentials", "-v", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 of 2 examples passed (1 rules)" in proc.stdout


def test_lint_reports_file_line_and_exits_non_zero(tmp_path: Path) -> None:
    bad = rules_file(
        tmp_path, "rules:\n  - id: bad-one\n    title: t\n    table: smtp\n    match: {contxt: x}\n" + FIX
    )
    proc = knownfix("rules", "lint", str(bad), cwd=tmp_path)
    assert proc.returncode == 1
    assert f"error: {bad}:5: unknown field `contxt` in table smtp" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_bad_rule_in_the_config_stops_ingest_with_one_line(tmp_path: Path) -> None:
    bad = rules_file(
        tmp_path,
        "rules:\n  - id: bad-one\n    title: t\n    table: smtp\n    match: {data|regex: '(x'}\n" + FIX,
    )
    (tmp_path / "knownfix.yaml").write_text(f"rules: [{bad}]\n")
    log = tmp_path / "SEND.LOG"
    log.write_text(SEND_HEADER + unknown_credentials(1))
    proc = knownfix("ingest", str(log), "-w", str(tmp_path / "wh"), cwd=tmp_path)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines[0].startswith(f"error: {bad}:5: `data|regex`: '(x' does not compile in RE2"), proc.stderr
    assert not (tmp_path / "wh" / "tables").exists()  # nothing was ingested


def test_explain_prints_the_sql(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["rules", "explain", "exchange-tls-unknown-credentials"])
    assert result.exit_code == 0
    assert 'FROM "smtp"' in result.stdout and 'REGEXP_MATCHES("tls_error"' in result.stdout
    proc = knownfix("rules", "explain", "exchange-tls-unknown-credential", cwd=tmp_path)
    assert proc.returncode == 1 and "did you mean exchange-tls-unknown-credentials" in proc.stderr


def test_ingest_finds_the_seed_failures_in_the_samples_with_their_fixes(tmp_path: Path) -> None:
    # sample_logs/ holds realistic logs written for the demo, with the exact seed failure lines
    wh = str(tmp_path / "wh")
    assert knownfix("ingest", str(SAMPLE_LOGS), "-w", wh, "-q", cwd=tmp_path).returncode == 0
    proc = knownfix("hits", "-w", wh, "--format", "json", "--limit", "500", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    hits = [json.loads(line) for line in proc.stdout.splitlines()]  # JSON lines, like query --format json
    found = {h["rule_id"] for h in hits}
    for seed_rule in (
        "exchange-tls-unknown-credentials",  # seed 000
        "exchange-cannot-achieve-exchange-server-authentication",  # seed 001
        "aad-sync-proxyaddress-must-be-unique",  # seed 000
        "hcw-hybriddomains-parameter-not-found",  # seed 000
        "sstp-server-binding-mismatch-then-client-aborts",  # seed 003
        "lsasrv-6041-credssp-encryption-oracle",  # seed 002
        "capi2-revocation-offline",  # seed 000
        "report-server-110-urlroot-invalid",  # seed 000
        "schannel-36874-no-common-cipher",  # seed 001
        "iis-403-7-client-certificate-required",  # seed 004
        "windows-update-kb2920189-gen2-bitlocker",  # seed 001
        "irm-failed-to-acquire-rms-templates",  # seed 002
        "sql-prelogin-untrusted-certificate-chain",  # seed 000
    ):
        assert seed_rule in found, seed_rule
    tls = next(h for h in hits if h["rule_id"] == "exchange-tls-unknown-credentials")
    assert next(c["cause"] for c in tls["fix"]["causes"]).startswith("The private key of the certificate")
    assert tls["samples"] and tls["query"].startswith('SELECT * FROM "smtp"')
    again = knownfix("rules", "run", "--rescan", "-w", wh, cwd=tmp_path)
    assert again.returncode == 0 and " 0 new hits" in again.stderr and "smtp:" in again.stderr

"""The README's demo: the seed failures in sample_logs/ are recognised, each with its fix, and ticketed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, SAMPLE_LOGS
from warehouse.query import run
from warehouse.store import Warehouse

#: One signature per seed story that leaves a line in sample_logs/.
SEED_SIGNATURES = {
    "exchange-tls-unknown-credentials",  # seed 000: UnknownCredentials on the send connector
    "exchange-cannot-achieve-exchange-server-authentication",  # seed 001: 451 4.4.0 / 451 5.7.3
    "aad-sync-proxyaddress-must-be-unique",  # seed 000: UPN-derived proxy address conflict
    "hcw-hybriddomains-parameter-not-found",  # Hybrid wizard HybridDomains parameter
    "sstp-server-binding-mismatch-then-client-aborts",  # RasClient 20227 + RasSstp 24
    "lsasrv-6041-credssp-encryption-oracle",
    "report-server-110-urlroot-invalid",
    "schannel-36874-no-common-cipher",
    "iis-403-7-client-certificate-required",
}


def test_demo_finds_the_seed_failures_and_opens_tickets(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    env = {**os.environ, "KNOWNFIX_WAREHOUSE": str(wh)}
    proc = subprocess.run(
        [sys.executable, "-m", "knownfix.cli", "demo", str(SAMPLE_LOGS)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = set(run(Warehouse(wh), "select distinct rule_id from hits").column(0).to_pylist())
    assert found >= SEED_SIGNATURES, f"not recognised: {SEED_SIGNATURES - found}"
    fixes = run(Warehouse(wh), "select rule_id, fix_summary from hits").to_pylist()
    assert all(r["fix_summary"] for r in fixes if r["rule_id"] in SEED_SIGNATURES)
    assert "TLS negotiation failed with error UnknownCredentials" in proc.stdout
    tickets = [json.loads(p.read_text()) for p in (wh / "tickets").glob("*.json")]
    dedup_keys = run(Warehouse(wh), "select count(distinct dedup_key) from hits").column(0)[0].as_py()
    assert len(tickets) == dedup_keys  # one ticket per incident
    # running the demo again adds no rows, hits or tickets
    again = subprocess.run(
        [sys.executable, "-m", "knownfix.cli", "demo", str(SAMPLE_LOGS)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert again.returncode == 0
    assert "0 rows (no new rows)" in again.stderr + again.stdout
    assert len(list((wh / "tickets").glob("*.json"))) == len(tickets)

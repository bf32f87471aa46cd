"""``knownfix tickets dispatch|list|retry`` and the ticket configuration, as a user meets them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner

from knownfix.cli import app
from knownfix.errors import ConfigError
from tests.tickets.fake_trackers import FakeGitHub
from tests.tickets.hitdata import Hits, key
from tickets.model import ticket_token
from warehouse.store import Warehouse

runner = CliRunner()
TOKEN = ticket_token(key())


def kf(*args: str) -> tuple[int, str, str, BaseException | None]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr, result.exception


def write_config(path: Path, data: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_without_a_tracker_tickets_are_markdown_and_json_files(
    hits: Hits, warehouse: Warehouse, tmp_path: Path
) -> None:
    hits.add(count=4)
    cfg = write_config(tmp_path / "k.yaml", {"tickets": {"update_interval": 0}})  # the real clock: no wait
    code, out, err, _ = kf("tickets", "dispatch", "--dry-run", "-w", str(warehouse.root), "-c", str(cfg))
    assert code == 0, err
    assert (
        "folder: create (unless a ticket already carries kf-" in out
        and "Restart-Service MSExchangeTransport" in out
    )
    assert not (warehouse.root / "tickets").exists(), "a dry run writes no ticket"

    code, _, err, _ = kf("tickets", "dispatch", "-w", str(warehouse.root), "-c", str(tmp_path / "k.yaml"))
    assert code == 0, err
    assert "1 new hit read" in err and "folder: 1 opened" in err
    ticket = json.loads((warehouse.root / "tickets" / f"{TOKEN}.json").read_text())
    assert (
        ticket["status"] == "open" and ticket["dedup_key"] == key() and "**Occurrences**: 4" in ticket["body"]
    )
    md = (warehouse.root / "tickets" / f"{TOKEN}.md").read_text()
    assert md.startswith("# \\[HIGH\\] Hybrid send connector") and "TLS negotiation failed" in md

    # a person closes it by editing the JSON; the failure comes back: reopened, one ticket
    ticket["status"] = "closed"
    (warehouse.root / "tickets" / f"{TOKEN}.json").write_text(json.dumps(ticket))
    hits.add(count=2)
    code, _, err, _ = kf("tickets", "dispatch", "-w", str(warehouse.root), "-c", str(tmp_path / "k.yaml"))
    assert code == 0 and "folder: 1 reopened" in err, err
    ticket = json.loads((warehouse.root / "tickets" / f"{TOKEN}.json").read_text())
    assert ticket["status"] == "open" and ticket["comments"][-1]["kind"] == "reopen"
    assert sorted(p.name for p in (warehouse.root / "tickets").iterdir()) == [f"{TOKEN}.json", f"{TOKEN}.md"]

    code, out, _, _ = kf(
        "tickets", "list", "-w", str(warehouse.root), "-f", "json", "-c", str(tmp_path / "k.yaml")
    )
    [row] = [json.loads(line) for line in out.splitlines()]
    assert row["sink"] == "folder" and row["ticket"] == TOKEN and row["count"] == 6 and row["reported"] == 6


def test_failed_for_good_is_listed_with_its_reason_and_resent_by_retry(
    httpserver: HTTPServer, hits: Hits, warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeGitHub(httpserver)
    cfg = write_config(
        tmp_path / "k.yaml",
        {
            "sinks": [
                {"type": "github", "repo": fake.repo, "token": {"env": "KF_GH_TOKEN"}, "api_url": fake.url}
            ]
        },
    )
    monkeypatch.setenv("KF_GH_TOKEN", "ghp_expired_token_999")
    hits.add()
    code, _, err, _ = kf("tickets", "dispatch", "-w", str(warehouse.root), "-c", str(cfg))
    assert code == 1 and "failed for good" in err and "401" in err
    assert "ghp_expired_token_999" not in err

    code, out, _, _ = kf(
        "tickets", "list", "--failed", "-f", "json", "-w", str(warehouse.root), "-c", str(cfg)
    )
    [row] = [json.loads(line) for line in out.splitlines()]
    assert (
        row["status"] == "failed"
        and "401" in row["reason"]
        and "Bad credentials (Bearer ***)" in row["reason"]
    )

    monkeypatch.setenv("KF_GH_TOKEN", fake.token)
    code, _, err, _ = kf("tickets", "dispatch", "-w", str(warehouse.root), "-c", str(cfg))
    assert code == 0 and fake.issues == {}, "dead-lettered: a plain dispatch leaves it alone"
    code, _, err, _ = kf("tickets", "retry", "-w", str(warehouse.root), "-c", str(cfg))
    assert code == 0, err
    assert "1 failed delivery queued again" in err and "github: 1 opened" in err
    assert len(fake.issues) == 1
    code, out, _, _ = kf(
        "tickets", "list", "--failed", "-f", "json", "-w", str(warehouse.root), "-c", str(cfg)
    )
    assert out.strip() == ""
    assert fake.violations == []


def test_credentials_come_from_an_owner_only_file(tmp_path: Path, warehouse: Warehouse) -> None:
    secret = tmp_path / "redmine.key"
    secret.write_text("0123456789abcdef0123\n")
    secret.chmod(0o644)
    sink = {
        "type": "redmine",
        "url": "http://127.0.0.1:9",
        "api_key": {"file": str(secret)},
        "project": "ops",
    }
    cfg = write_config(tmp_path / "k.yaml", {"sinks": [sink]})
    code, _, _, exc = kf("tickets", "dispatch", "-w", str(warehouse.root), "-c", str(cfg))
    assert code != 0 and isinstance(exc, ConfigError)
    assert "readable by others (mode 0644)" in str(exc) and f"chmod 600 {secret}" in str(exc)
    assert "0123456789abcdef0123" not in str(exc)
    secret.chmod(0o600)
    code, _, err, _ = kf("tickets", "dispatch", "--dry-run", "-w", str(warehouse.root), "-c", str(cfg))
    assert code == 0, err


def test_config_problems_are_one_line_and_never_echo_a_secret(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "k.yaml",
        {
            "sinks": [
                {"type": "github", "repo": "o/r", "token": "ghp_inline_secret_123"},
                {"type": "jra"},
                {"type": "jira", "url": "https://x", "token": {"env": "NOPE_NOT_SET"}, "project": "OPS"},
            ],
            "tickets": {"update_interval": "5 minutes"},
        },
    )
    proc = subprocess.run(
        [sys.executable, "-m", "knownfix.cli", "tickets", "list", "-w", str(tmp_path / "wh"), "-c", str(cfg)],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "NOPE_NOT_SET"},
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error:")
    assert "ghp_inline_secret_123" not in proc.stderr
    assert "sinks.0.github.token" in proc.stderr and "environment variable" in proc.stderr
    assert "'webhook', 'jira', 'servicenow', 'redmine', 'github', 'folder'" in proc.stderr
    assert "not a duration: '5 minutes'" in proc.stderr

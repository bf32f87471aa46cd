"""`knownfix tail` and `knownfix status` as a user runs them: a child process, signals, JSON."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from ingest.status import read_status
from tests.tail.helpers import Running, append, assert_exactly_once, has_all, ids, lines, wait_until
from warehouse.store import Warehouse

FAST_YAML = """\
tail:
  commit_interval: 0.05
  partial_line_timeout: 0.5
  settle_time: 0.3
  status_interval: 0.2
"""


def spawn(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "knownfix.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=env,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def _status(wh: Path) -> dict[str, Any]:
    return read_status(wh / "state") or {}


def test_tail_reports_status_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    logs, wh, cfg, log = (
        tmp_path / "logs",
        tmp_path / "wh",
        tmp_path / "knownfix.yaml",
        tmp_path / "tail.jsonl",
    )
    logs.mkdir()
    cfg.write_text(FAST_YAML)
    proc = spawn("tail", str(logs), "-w", str(wh), "-c", str(cfg), "--log-file", str(log), cwd=tmp_path)
    try:
        append(logs / "app.log", lines("c", 0, 1000))
        wait_until(lambda: (_status(wh).get("totals") or {}).get("rows", 0) >= 1000, "1000 rows", timeout=30)

        # two more processes at once: a status reader and a second writer
        shown, second = spawn("status", "--json", "-w", str(wh)), spawn("tail", str(logs), "-w", str(wh))
        code, out, err = finish(shown)
        assert code == 0, err
        doc = json.loads(out)
        assert doc["state"] == "running" and doc["pid"] == proc.pid
        assert doc["sources"] == [{"path": str(logs), "observer": "native", "poll_interval": None}]
        (entry,) = doc["files"]
        size = (logs / "app.log").stat().st_size
        assert (entry["path"], entry["offset"], entry["size"], entry["lag_bytes"]) == (
            str(logs / "app.log"),
            size,
            size,
            0,
        )
        assert doc["totals"]["rows"] == 1000 and doc["totals"]["rejects"] == 0
        assert doc["rows_per_s"] > 0 and doc["last_commit"]["rows"] > 0 and doc["last_error"] is None

        code, _, err = finish(second)
        assert code == 1
        assert err.strip().count("\n") == 0 and f"process {proc.pid}" in err

        append(logs / "app.log", lines("c", 1000, 6000))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    final = _status(wh)
    assert final["running"] is False and final["alive"] is False
    assert all(f["read"] == f["offset"] for f in final["files"])  # the batch in flight was committed
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert events[0] == "started" and "stopping" in events and events[-1] == "stopped"
    stopped = spawn("status", "-w", str(wh))
    code, out, _ = finish(stopped)
    assert code == 3 and "stopped" in out
    with Running(Warehouse(wh), logs):  # whatever SIGTERM left unread is read now, once
        wait_until(has_all(Warehouse(wh), ids("c", 0, 6000)), "every line")
    assert_exactly_once(Warehouse(wh), ids("c", 0, 6000))


def test_tail_follows_the_config_sources_and_rejects_a_bad_config(tmp_path: Path) -> None:
    logs, wh = tmp_path / "share", tmp_path / "wh"
    logs.mkdir()
    cfg = tmp_path / "knownfix.yaml"
    cfg.write_text(
        FAST_YAML
        + f"warehouse: {wh}\nsources:\n  - path: {logs}\n    include: ['*.log']\n"
        + "    observer: polling\n    poll_interval: 0.2\n"
    )
    append(logs / "ignored.txt", "id=ignored\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"sources:\n  - path: {logs}\n    observer: inotify\ntail:\n  max_open_files: 0\n")
    refused = spawn(
        "tail", "-c", str(bad), "-w", str(tmp_path / "other"), env={**os.environ, "NO_COLOR": "1"}
    )
    proc = spawn("tail", cwd=tmp_path)  # knownfix.yaml in the working directory
    try:
        append(logs / "app.log", lines("y", 0, 100))
        wait_until(has_all(Warehouse(wh), ids("y", 0, 100)), "lines from the configured source", timeout=30)
        assert _status(wh)["sources"][0]["observer"] == "polling"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_exactly_once(Warehouse(wh), ids("y", 0, 100))
    code, _, err = finish(refused)
    assert code == 2
    message = " ".join(err.split())
    assert "sources.0.observer" in message and "tail.max_open_files" in message and "Traceback" not in message


def test_the_documented_config_example_is_valid_and_states_the_defaults() -> None:
    from ingest.settings import TailConfig
    from knownfix.config import load_config
    from tests.conftest import ROOT

    cfg = load_config(ROOT / "docs" / "knownfix.yaml.example")
    assert cfg.tail == TailConfig()  # every documented value is the real default
    assert [s.observer for s in cfg.sources] == ["auto", "auto"]
    unit = (ROOT / "docs" / "knownfix-tail.service").read_text()
    assert "ExecStart=/opt/knownfix/.venv/bin/knownfix tail" in unit and "KillSignal=SIGTERM" in unit


def test_a_failure_written_to_a_followed_folder_becomes_a_ticket(tmp_path: Path) -> None:
    from tests.conftest import SAMPLE_LOGS

    logs, wh, cfg = tmp_path / "logs", tmp_path / "wh", tmp_path / "knownfix.yaml"
    logs.mkdir()
    cfg.write_text(FAST_YAML)
    proc = spawn("tail", str(logs), "-w", str(wh), "-c", str(cfg), cwd=tmp_path)
    try:
        wait_until(lambda: _status(wh).get("alive"), "the tailer to start", timeout=60)
        # the send log that holds seed 000's UnknownCredentials lines
        seed = SAMPLE_LOGS / "exchange/TransportRoles/Logs/Hub/ProtocolLog/SmtpSend/SEND2016071912-1.LOG"
        append(logs / "SEND2016071912-1.LOG", seed.read_text(encoding="utf-8-sig"))

        def ticket_keys() -> set[str]:
            found = set()
            for path in (wh / "tickets").glob("*.json") if (wh / "tickets").is_dir() else []:
                found.add(json.loads(path.read_text(encoding="utf-8")).get("title", ""))
            return found

        wait_until(lambda: any("UnknownCredentials" in t for t in ticket_keys()), "a ticket", timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        code, _, err = finish(proc)
    assert code == 0, err

"""Start-up stays fast: help and argument errors answer without loading the data stack.

Each case runs the real ``main`` in a fresh interpreter and records which modules it imported, so
a module-level import of Arrow, DuckDB or a parser in any command module fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

#: Libraries only the commands that read or write data need (seconds of import time together).
HEAVY = (
    "pyarrow",
    "pandas",
    "duckdb",
    "deltalake",
    "pyparsing",
    "evtx",
    "httpx",
    "jinja2",
    "sqlglot",
    "watchdog",
)

#: Runs ``main`` with the given arguments, then writes its exit code and ``sys.modules`` to a file.
PROBE = """
import json, sys
report, args = sys.argv[1], sys.argv[2:]
sys.argv = ["knownfix", *args]
from knownfix.cli import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
with open(report, "w", encoding="utf-8") as f:
    json.dump({"exit": code, "modules": sorted(sys.modules)}, f)
"""


def run_cli(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(report), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.is_file(), proc.stderr
    return proc, json.loads(report.read_text(encoding="utf-8"))


def heavy_in(modules: list[str]) -> list[str]:
    return sorted({m.split(".")[0] for m in modules} & set(HEAVY))


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["rules", "--help"],
        ["tickets", "--help"],
        ["identity", "--help"],
        ["rules", "explain", "--help"],
        ["tail", "--help"],
        ["query", "--help"],
        ["hits", "--help"],
    ],
)
def test_help_loads_no_data_library(tmp_path: Path, args: list[str]) -> None:
    proc, report = run_cli(tmp_path, *args)
    assert report["exit"] == 0, proc.stderr
    assert "Usage:" in proc.stdout
    assert heavy_in(report["modules"]) == []


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["rules"],
        ["query"],
        ["tables", "--format", "xml"],
        ["rejects", "--limit", "many"],
        ["no-such-command"],
    ],
)
def test_argument_errors_load_no_data_library(tmp_path: Path, args: list[str]) -> None:
    proc, report = run_cli(tmp_path, *args)
    assert report["exit"] == 2, proc.stderr
    assert "Usage:" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert heavy_in(report["modules"]) == []


def test_commands_import_what_they_need_when_they_run(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "setup.log").write_text("one\ntwo\n")
    wh = str(tmp_path / "wh")
    proc, report = run_cli(tmp_path, "ingest", str(logs), "-w", wh, "-q")
    assert report["exit"] == 0, proc.stderr
    assert {"pyarrow", "deltalake"} <= set(heavy_in(report["modules"]))  # the probe sees imports
    proc, report = run_cli(tmp_path, "tables", "-w", wh, "-f", "csv")
    assert report["exit"] == 0, proc.stderr
    assert '"lines",2,' in proc.stdout
    assert "duckdb" in heavy_in(report["modules"])

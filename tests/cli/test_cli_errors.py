"""The CLI as a user meets it: one clear line and a non-zero exit for every error, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from warehouse.lock import WriterLock


def knownfix(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "knownfix.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines and lines[0].startswith("error:"), proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_missing_path_says_so(tmp_path: Path) -> None:
    proc = knownfix("ingest", str(tmp_path / "nope"), "-w", str(tmp_path / "wh"))
    assert_one_line_error(proc, "does not exist")


def test_bad_sql_names_the_problem_and_the_tables(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "setup.log").write_text("one\ntwo\n")
    assert knownfix("ingest", str(logs), "-w", str(tmp_path / "wh")).returncode == 0
    proc = knownfix("query", "select * from nosuchtable", "-w", str(tmp_path / "wh"))
    assert_one_line_error(proc, "nosuchtable", "tables: files, hits, lines")
    proc = knownfix("query", "selec 1", "-w", str(tmp_path / "wh"))
    assert_one_line_error(proc, "syntax error")


def test_unreadable_file_is_reported_and_the_rest_ingested(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "good.log").write_text("fine\n")
    secret = logs / "secret.log"
    secret.write_text("hidden\n")
    secret.chmod(0)
    try:
        if secret.open("rb").readable():  # root reads anything: make it a directory-shaped failure instead
            secret.chmod(0o644)
            secret.unlink()
            secret.symlink_to(tmp_path / "dangling-target")
        proc = knownfix("ingest", str(logs), "-w", str(tmp_path / "wh"))
    finally:
        if secret.exists():
            secret.chmod(0o644)
    assert proc.returncode == 1
    assert "secret.log" in proc.stderr and "Traceback" not in proc.stderr
    got = knownfix("query", "select text from lines", "-w", str(tmp_path / "wh"), "-f", "json")
    assert [json.loads(x)["text"] for x in got.stdout.splitlines()] == ["fine"]


def test_second_writer_is_refused_while_queries_still_work(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text("alpha\n")
    wh = tmp_path / "wh"
    assert knownfix("ingest", str(logs), "-w", str(wh)).returncode == 0
    with WriterLock(wh):
        proc = knownfix("ingest", str(logs), "-w", str(wh))
        assert_one_line_error(proc, "is being written by process", "--warehouse")
        q = knownfix("query", "select count(*) as n from lines", "-w", str(wh), "-f", "csv")
        assert q.returncode == 0, q.stderr
        assert q.stdout.splitlines() == ['"n"', "1"]


def test_corrupt_table_tells_what_to_do(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text("alpha\n")
    wh = tmp_path / "wh"
    assert knownfix("ingest", str(logs), "-w", str(wh)).returncode == 0
    for entry in (wh / "tables" / "lines" / "_delta_log").glob("*.json"):
        entry.write_text("{ this is not json")
    proc = knownfix("query", "select * from lines", "-w", str(wh))
    assert_one_line_error(proc, "lines", "re-ingest")


def test_query_formats(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text("alpha\nbeta\n")
    wh = tmp_path / "wh"
    knownfix("ingest", str(logs), "-w", str(wh))
    sql = "select text, line_number from lines order by line_number"
    as_json = knownfix("query", sql, "-w", str(wh), "-f", "json").stdout.splitlines()
    assert [json.loads(x) for x in as_json] == [
        {"text": "alpha", "line_number": 1},
        {"text": "beta", "line_number": 2},
    ]
    table = knownfix("query", sql, "-w", str(wh)).stdout
    assert "alpha" in table and "2 rows" in table
    out = tmp_path / "x.parquet"
    assert knownfix("query", sql, "-w", str(wh), "-f", "parquet", "-o", str(out)).returncode == 0
    assert pq.read_table(out).column("text").to_pylist() == ["alpha", "beta"]
    assert_one_line_error(knownfix("query", sql, "-w", str(wh), "-f", "parquet"), "--output")


def test_warehouse_location_from_environment_and_config(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text("alpha\n")
    (tmp_path / "knownfix.yaml").write_text(f"warehouse: {tmp_path / 'from-config'}\n")
    assert knownfix("ingest", str(logs), cwd=tmp_path).returncode == 0
    assert (tmp_path / "from-config" / "tables" / "lines").is_dir()
    (tmp_path / "knownfix.yaml").write_text("warehous: typo\n")
    assert_one_line_error(knownfix("tables", cwd=tmp_path), "unknown key 'warehous'", "knownfix.yaml")


def test_timezone_flag_sets_the_zone_of_local_time_exports(tmp_path: Path) -> None:
    from tests.conftest import SAMPLE_LOGS

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "events.csv").write_bytes((SAMPLE_LOGS / "windows" / "wec01_forwarded_events.csv").read_bytes())
    sql = "select time_created::varchar t, time_assumed_tz z from events order by source_offset limit 1"
    times = {}
    for zone in ("UTC", "Asia/Dubai"):
        wh = str(tmp_path / f"wh-{zone.replace('/', '-')}")
        proc = knownfix("ingest", str(logs), "-w", wh, "--timezone", zone)
        assert proc.returncode == 0, proc.stderr
        row = json.loads(knownfix("query", sql, "-w", wh, "-f", "json").stdout)
        assert row["z"] == zone
        times[zone] = row["t"]
    assert (
        times["UTC"] != times["Asia/Dubai"]
    )  # Dubai is UTC+4: the same wall clock is 4 hours earlier in UTC
    assert_one_line_error(
        knownfix("ingest", str(logs), "-w", str(tmp_path / "x"), "--timezone", "Mars/Olympus"),
        "unknown time zone 'Mars/Olympus'",
    )


def test_unknown_nested_config_keys_list_the_keys_valid_there(tmp_path: Path) -> None:
    (tmp_path / "knownfix.yaml").write_text("tail:\n  commit_intervall: 3\n")
    assert_one_line_error(
        knownfix("tables", cwd=tmp_path), "unknown key 'tail.commit_intervall'", "commit_interval"
    )
    (tmp_path / "knownfix.yaml").write_text("sinks:\n  - type: jira\n    urll: x\n")
    assert_one_line_error(knownfix("tables", cwd=tmp_path), "'urll'", "url, deployment")

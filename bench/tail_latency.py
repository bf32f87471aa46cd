"""``./dev bench tail``: delay from a line's write to its row being queryable, and to its rule hit,
while a writer appends a sustained 20,000 lines/s to an Exchange SMTP send log.

``knownfix tail`` runs as the product runs (a child process, default settings, the bundled rule
library evaluated after every commit). Each line's ``date-time`` field is its write time; a row
is queryable when the Delta commit that holds it exists, so the delay of every row is the commit
timestamp of its ``_version`` minus its ``date_time``. One line in 2,000 is the failure of seed
000 (``TLS negotiation failed with error UnknownCredentials``) on a connector of its own, so each
makes one hit of ``exchange-tls-unknown-credentials``; its delay is the commit of that hit minus
the line's write time. ``KNOWNFIX_BENCH_TAIL_SECONDS`` sets the duration (default 30),
``KNOWNFIX_BENCH_TAIL_RATE`` the lines/s (default 20000).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from deltalake import DeltaTable

from warehouse.query import run
from warehouse.store import Warehouse

HEADER = (
    "#Software: Microsoft Exchange Server\r\n#Version: 15.01.2507.006\r\n#Log-type: SMTP Send Protocol Log\r\n"
    "#Date: {date}\r\n"
    "#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context\r\n"
)
TICK_S = 0.01
FAILURE_EVERY = 2000
RULE = "exchange-tls-unknown-credentials"


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _lines(start: int, n: int) -> str:
    stamp = _now_iso()
    out = []
    for i in range(start, start + n):
        session = f"08D3{i // 8:012X}"
        if i % FAILURE_EVERY == FAILURE_EVERY - 1:
            out.append(
                f"{stamp},Outbound to Office 365 #{i},{session},{i % 8},,,*,,"
                "TLS negotiation failed with error UnknownCredentials\r\n"
            )
        else:
            out.append(
                f"{stamp},Outbound to Office 365,{session},{i % 8},10.0.0.5:21841,104.47.1.36:25,>,"
                f"EHLO ex01.contoso.com,line {i}\r\n"
            )
    return "".join(out)


def _write(log: Path, rate: int, seconds: float) -> tuple[int, float]:
    """Append ``rate`` lines/s in ticks of 10 ms for ``seconds``; returns (lines, achieved rate)."""
    per_tick = max(1, round(rate * TICK_S))
    written = 0
    with log.open("a", encoding="utf-8", newline="") as f:
        f.write(HEADER.format(date=_now_iso()))
        f.flush()
        start = time.monotonic()
        tick = 0
        while time.monotonic() - start < seconds:
            f.write(_lines(written, per_tick))
            f.flush()
            written += per_tick
            tick += 1
            pause = start + tick * TICK_S - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # pacing of the writer
        return written, written / (time.monotonic() - start)


def _commit_times(table: Path) -> dict[int, float]:
    """Version -> commit time (s since epoch) from the Delta log."""
    return {int(h["version"]): h["timestamp"] / 1000.0 for h in DeltaTable(str(table)).history()}


def _pcts(values: np.ndarray) -> str:
    if values.size == 0:
        return "no samples"
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return f"p50 {p50:.3f} s, p90 {p90:.3f} s, p99 {p99:.3f} s, max {values.max():.3f} s (n={values.size:,})"


def main() -> None:
    seconds = float(os.environ.get("KNOWNFIX_BENCH_TAIL_SECONDS", "30"))
    rate = int(os.environ.get("KNOWNFIX_BENCH_TAIL_RATE", "20000"))
    with tempfile.TemporaryDirectory(prefix="knownfix-bench-tail-") as tmp:
        if os.environ.get("KNOWNFIX_BENCH_TAIL_KEEP"):
            tmp = tempfile.mkdtemp(prefix="knownfix-bench-tail-")
        logs, wh_root = Path(tmp) / "logs", Path(tmp) / "wh"
        logs.mkdir()
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "knownfix.cli",
                "tail",
                str(logs),
                "-w",
                str(wh_root),
                "--log-level",
                os.environ.get("KNOWNFIX_BENCH_TAIL_LOG", "info"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(Path(tmp) / "tail.log", "w"),  # noqa: SIM115 - closed with the process
        )
        wh = Warehouse(wh_root)
        try:
            status = wh_root / "state" / "tail-status.json"
            deadline = time.monotonic() + 60
            while not status.exists() and time.monotonic() < deadline:
                time.sleep(0.05)  # waiting for the child to start
            written, achieved = _write(logs / "SEND20240611-1.LOG", rate, seconds)
            deadline = time.monotonic() + 120
            rows = 0
            while time.monotonic() < deadline:
                if wh.has_table("smtp"):
                    rows = int(run(wh, "select count(*) from smtp").column(0)[0].as_py())
                if rows >= written:
                    break
                time.sleep(0.2)
            hits_expected = written // FAILURE_EVERY
            while time.monotonic() < deadline and hits_expected:
                if wh.has_table("hits"):
                    n = run(wh, "select count(*) from hits where rule_id = ?", [RULE]).column(0)[0].as_py()
                    if int(n) >= hits_expected:
                        break
                time.sleep(0.2)
        finally:
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=60)
        _report(wh, written, achieved, rows, seconds)


def _report(wh: Warehouse, written: int, achieved: float, rows: int, seconds: float) -> None:
    commits = _commit_times(wh.table_path("smtp"))
    got = run(
        wh, "select _version, epoch_ms(date_time) / 1000.0 as t, count(*) n from smtp group by 1, 2"
    ).to_pylist()
    delays = np.repeat(
        np.array([commits[r["_version"]] - r["t"] for r in got]),
        np.array([r["n"] for r in got], dtype=np.int64),
    )
    print(
        f"tail latency: {written:,} lines written over {seconds:.0f} s at {achieved:,.0f} lines/s; {rows:,} rows"
    )
    print(f"  write -> queryable: {_pcts(delays)}")
    if wh.has_table("hits"):
        hit_commits = _commit_times(wh.table_path("hits"))
        hits = run(
            wh, "select _version, epoch_ms(first_seen) / 1000.0 as t from hits where rule_id = ?", [RULE]
        ).to_pylist()
        hit_delays = np.array([hit_commits[h["_version"]] - h["t"] for h in hits])
        print(
            f"  write -> rule hit:  {_pcts(hit_delays)}; {len(hits)} of {written // FAILURE_EVERY} failures"
        )
    else:
        print("  write -> rule hit:  no hits table (no rule fired)")
    versions = len(commits)
    print(f"  {versions} commits of the smtp table ({versions / seconds:.1f}/s)")


if __name__ == "__main__":
    main()

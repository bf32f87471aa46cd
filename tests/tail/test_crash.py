"""`kill -9` at random moments while a writer appends and rotates: every line exactly once.

The tailer runs as `knownfix tail` in a child process and is killed with SIGKILL at least 20
times, at seeded random moments: during start-up, while reading, between the commit of a data
table and that of the ``files`` table. Meanwhile the writer appends steadily, rotates its log by
rename and compresses older rotations (deleting the plain copy), so some lines are only ever
readable from a ``.gz``. After the last restart, every id is in the warehouse exactly once.
"""

from __future__ import annotations

import gzip
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ingest.identity import load_registry
from ingest.status import read_status
from tests.tail.helpers import assert_exactly_once, has_all, wait_until
from warehouse.store import Warehouse

SEED = int(os.environ.get("KNOWNFIX_CRASH_SEED", "20240611"))
KILLS = 20
CONFIG = """\
tail:
  commit_interval: 0.05
  partial_line_timeout: 0.5
  settle_time: 0.3
  close_inactive: 2
  status_interval: 0.1
  chunk_bytes: 65536
  batch_bytes: 262144
"""


class Writer(threading.Thread):
    """Appends ~4000 lines/s in small writes; rotates every 3000 lines; gzips old rotations."""

    def __init__(self, logs: Path, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.logs, self.rng = logs, rng
        self.written = 0
        self.stop = threading.Event()

    def run(self) -> None:
        log = self.logs / "app.log"
        generation = 0
        f = log.open("a")
        while not self.stop.is_set():
            n = self.rng.randint(1, 40)
            f.write("".join(f"{time.time():.6f} id=w{self.written + i:07} steady line\n" for i in range(n)))
            f.flush()
            self.written += n
            if self.written // 3000 > generation:
                generation += 1
                f.close()
                os.rename(log, self.logs / f"app.log.{generation}")
                f = log.open("a")
                older = self.logs / f"app.log.{generation - 1}"
                if older.exists():
                    with older.open("rb") as src, gzip.open(f"{older}.gz", "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    older.unlink()
            self.stop.wait(0.01)  # the write rate, not a synchronisation
        f.close()


def _tail(logs: Path, wh: Path, cfg: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "knownfix.cli", "tail", str(logs), "-w", str(wh), "-c", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _running(wh: Path, pid: int) -> bool:
    doc = read_status(wh / "state") or {}
    return doc.get("pid") == pid and bool(doc.get("running"))


def test_sigkill_at_random_moments_loses_and_doubles_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    logs, wh, cfg = tmp_path / "logs", tmp_path / "wh", tmp_path / "knownfix.yaml"
    logs.mkdir()
    cfg.write_text(CONFIG)
    writer = Writer(logs, random.Random(rng.random()))
    writer.start()
    torn = 0  # kills that left a data table ahead of the files checkpoint
    started = time.monotonic()
    try:
        for kill in range(KILLS):
            child = _tail(logs, wh, cfg)
            if kill % 2:  # half of the kills once the loop runs, at any point of it
                wait_until(lambda c=child: _running(wh, c.pid), "the child to run", timeout=30)
                delay = rng.uniform(0.0, 0.5)
            else:  # the other half anywhere from start-up on
                delay = rng.uniform(0.2, 2.0)
            time.sleep(delay)  # the random moment of the kill, not a synchronisation
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
            torn += _torn(Warehouse(wh))
    finally:
        writer.stop.set()
        writer.join(timeout=10)
    killed_after = time.monotonic() - started
    final = _tail(logs, wh, cfg)
    try:
        expected = {f"w{i:07}" for i in range(writer.written)}
        wait_until(has_all(Warehouse(wh), expected), "every line after the last restart", timeout=60)
        final.send_signal(signal.SIGTERM)
        assert final.wait(timeout=30) == 0
    finally:
        if final.poll() is None:
            final.kill()
    print(
        f"seed {SEED}: {KILLS} kills in {killed_after:.1f}s, {writer.written} lines, "
        f"{torn} kills between data and checkpoint, drained in {time.monotonic() - started - killed_after:.1f}s"
    )
    assert_exactly_once(Warehouse(wh), expected)


def _torn(wh: Warehouse) -> int:
    """1 if the kill fell between a data table's commit and the files checkpoint of a file."""
    registry = load_registry(wh)
    return int(any((wh.checkpoint("lines", i.file_id) or 0) > i.position for i in registry.by_id.values()))

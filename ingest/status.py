"""What a running tailer reports about itself, kept in ``<warehouse>/state/tail-status.json``.

The tailer rewrites the file atomically (temporary file + rename), so ``knownfix status`` never
reads half a document, and can tell a running tailer from one that stopped or was killed (the
``pid`` is gone while ``running`` is still true).
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUS_FILE = "tail-status.json"
#: Window over which ``rows_per_s`` is averaged.
RATE_WINDOW_S = 10.0


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def write_atomic(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_status(state_dir: Path) -> dict[str, Any] | None:
    """The last status a tailer wrote into ``state_dir``, with ``alive`` added; None if none."""
    path = state_dir / STATUS_FILE
    try:
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None
    doc["alive"] = bool(doc.get("running")) and pid_alive(int(doc.get("pid") or 0))
    return doc


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Totals:
    rows: int = 0
    rejects: int = 0
    records_read: int = 0
    bytes_read: int = 0
    commits: int = 0


@dataclass
class StatusBook:
    """Counters and recent events the tailer keeps for its status file."""

    warehouse: str
    started_at: str = field(default_factory=now_iso)
    totals: Totals = field(default_factory=Totals)
    sources: list[dict[str, Any]] = field(default_factory=list)
    last_commit: dict[str, Any] | None = None
    last_error: dict[str, Any] | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    _recent: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)

    def committed(self, rows: int, rejects: int, records: int, nbytes: int, details: dict[str, Any]) -> None:
        t = self.totals
        t.rows, t.rejects, t.records_read = t.rows + rows, t.rejects + rejects, t.records_read + records
        t.bytes_read += nbytes
        t.commits += 1
        self._recent.append((time.monotonic(), rows))
        self.last_commit = {"at": now_iso(), "rows": rows, "rejects": rejects, **details}

    def error(self, message: str, **fields: Any) -> None:
        self.last_error = {"at": now_iso(), "message": message, **fields}

    def rows_per_s(self) -> float:
        cutoff = time.monotonic() - RATE_WINDOW_S
        while self._recent and self._recent[0][0] < cutoff:
            self._recent.popleft()
        return round(sum(n for _, n in self._recent) / RATE_WINDOW_S, 1)

    def document(self, files: list[dict[str, Any]], *, running: bool) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "running": running,
            "warehouse": self.warehouse,
            "started_at": self.started_at,
            "updated_at": now_iso(),
            "sources": self.sources,
            "files": files,
            "lag_bytes": sum(int(f.get("lag_bytes") or 0) for f in files),
            "rows_per_s": self.rows_per_s(),
            "totals": vars(self.totals),
            "last_commit": self.last_commit,
            "last_error": self.last_error,
            "skipped": [{"path": p, "reason": r} for p, r in sorted(self.skipped.items())],
        }

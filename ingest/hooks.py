"""Running the after-commit hook (rule evaluation) beside the reading, one run at a time.

Rule evaluation reads the rows committed since its watermark, so one run after several commits
covers them all: while a run is busy, the commits made meanwhile are merged into the next run.
Reading and parsing therefore go on while the rules run (a commit waits for the run in
progress), and a hit still follows its line by one evaluation. A crash between a commit and its run loses nothing: the watermark did not move,
and the next run (after the next commit, or ``knownfix rules run``) covers those rows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ingest.logs import EventLog
from ingest.status import StatusBook
from warehouse.commit import CommitSummary

Hook = Callable[[CommitSummary], None]


def merge(a: CommitSummary | None, b: CommitSummary) -> CommitSummary:
    """One summary standing for two commits (tables and their newest versions, summed counts)."""
    if a is None:
        return b
    rows = dict(a.rows)
    for table, n in b.rows.items():
        rows[table] = rows.get(table, 0) + n
    versions = dict(a.versions)
    for table, v in b.versions.items():
        versions[table] = max(versions.get(table, v), v)
    return CommitSummary(
        rows=rows,
        rejects=a.rejects + b.rejects,
        records_read=a.records_read + b.records_read,
        files=a.files + b.files,
        versions=versions,
    )


def call_hook(hook: Hook, summary: CommitSummary, log: EventLog, book: StatusBook) -> float:
    """Run the hook; a failure is logged and reported, never raised (the rows are committed)."""
    started = time.monotonic()
    try:
        hook(summary)
    except Exception as exc:
        log.error("after_commit_failed", error=repr(exc))
        book.error(f"after-commit hook failed: {exc}")
    return round((time.monotonic() - started) * 1000, 1)


class BackgroundHook:
    """A thread that runs ``hook`` for the commits submitted, merging those that wait."""

    def __init__(self, hook: Hook, log: EventLog, book: StatusBook) -> None:
        self.hook, self.log, self.book = hook, log, book
        self._cv = threading.Condition()
        self._pending: CommitSummary | None = None
        self._busy = False
        self._closing = False
        self.runs = 0
        self._thread = threading.Thread(target=self._loop, name="after-commit", daemon=True)
        self._thread.start()

    def submit(self, summary: CommitSummary) -> None:
        with self._cv:
            self._pending = merge(self._pending, summary)
            self._cv.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cv:
                while self._pending is None and not self._closing:
                    self._cv.wait()
                if self._pending is None:
                    return
                summary, self._pending, self._busy = self._pending, None, True
            ms = call_hook(self.hook, summary, self.log, self.book)
            self.runs += 1
            self.log.debug("after_commit", ms=ms, tables=sorted(summary.versions))
            with self._cv:
                self._busy = False
                self._cv.notify_all()

    def idle(self) -> bool:
        with self._cv:
            return self._pending is None and not self._busy

    def close(self, timeout: float = 300.0) -> None:
        """Finish the runs still due (the last commits' rows get evaluated), then stop."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        self._thread.join(timeout)

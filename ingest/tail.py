"""The tailing loop: events in, pieces read, one commit per batch, rules after every commit.

One thread does the reading and the committing, so a slow warehouse slows the reading and
nothing else (the after-commit hook, rule evaluation, runs beside it: ``ingest.hooks``): the unread bytes wait in the files (never in an unbounded queue) and memory stays
at ``batch_bytes``. Events only name paths to look at; a periodic re-scan catches what events
miss. Each commit carries every file's new position (``warehouse.commit``), so a restart resumes
exactly where the last commit ended, whatever killed the previous run.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from ingest.backfill import CommitHook
from ingest.follow import Follower
from ingest.hooks import BackgroundHook, call_hook
from ingest.identity import load_registry
from ingest.logs import EventLog
from ingest.settings import SourceConfig, TailConfig
from ingest.status import STATUS_FILE, StatusBook, write_atomic
from ingest.tracker import Piece
from ingest.watch import Source, Watcher
from parsers.base import ParseOptions
from parsers.registry import parser_for
from warehouse.commit import CommitSummary, commit
from warehouse.store import Warehouse

#: Longest pause between two attempts of a failing commit.
MAX_RETRY_S = 30.0
#: How often observers are checked (a watch ends when its folder goes away, e.g. a share unmounts).
HEAL_INTERVAL_S = 1.0


class Tailer:
    """Follows the sources into ``wh`` until ``stop`` is set; the caller holds the writer lock."""

    def __init__(
        self,
        wh: Warehouse,
        sources: list[SourceConfig],
        settings: TailConfig | None = None,
        *,
        after_commit: CommitHook | None = None,
        options: ParseOptions | None = None,
        log: EventLog | None = None,
        background_hook: bool = True,
    ) -> None:
        # its own handle: a hook running beside it (rules) keeps its own table handles
        self.wh = Warehouse(wh.root)
        self.settings = settings or TailConfig()
        for src in sources:
            if src.format:
                parser_for(src.format)  # unknown names fail here, at start-up
        self.sources = [Source(s) for s in sources]
        self.hook = after_commit
        self.background_hook = background_hook
        self.runner: BackgroundHook | None = None
        self.options = options or ParseOptions()
        self.log = log or EventLog()
        self.book = StatusBook(str(wh.root))
        self.wake = threading.Event()
        self.batch: list[Piece] = []
        self.pending_bytes = 0
        self.max_pending_bytes = 0  # high-water mark, for the back-pressure test and status
        self.last_commit = 0.0
        self.last_status = 0.0
        self.table_commits: dict[str, int] = {}
        self.follower: Follower | None = None
        self.watcher: Watcher | None = None
        self.stop = threading.Event()
        #: Set once the observers run and the first scan is done (files present then are "existing").
        self.ready = threading.Event()

    # ---- the loop --------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> StatusBook:
        """Tail until ``stop`` is set; the batch in flight is committed before returning."""
        if stop is not None:
            self.stop = stop
        follower = self.follower = Follower(
            load_registry(self.wh), self.settings, self.options, self.log, self.book
        )
        watcher = self.watcher = Watcher(self.sources, self.wake)
        if self.hook is not None and self.background_hook:
            self.runner = BackgroundHook(self.hook, self.log, self.book)
        try:
            self.book.sources = [i.as_dict() for i in watcher.start()]
            self.log.info("started", warehouse=str(self.wh.root), sources=self.book.sources)
            self._scan(initial=True)
            self.ready.set()
            next_rescan = time.monotonic() + self.settings.rescan_interval
            next_heal = time.monotonic() + HEAL_INTERVAL_S
            while True:
                now = time.monotonic()
                paths, dirs = watcher.drain()
                healed = []
                if now >= next_heal:
                    healed, next_heal = watcher.heal(), now + HEAL_INTERVAL_S
                for source in healed:
                    self.log.warning("observer_restarted", path=str(source.root))
                if now >= next_rescan or healed:
                    self._scan()
                    follower.wake_unwatched()
                    next_rescan = now + self.settings.rescan_interval
                else:
                    for d in sorted(dirs):
                        self._scan_dir(Path(d))
                    for p in sorted(paths):
                        self._observe(Path(p))
                self._read_pass()
                if self.batch and (
                    self.stop.is_set() or time.monotonic() - self.last_commit >= self.settings.commit_interval
                ):
                    self._commit()
                self._status(time.monotonic())
                if self.stop.is_set():
                    break
                timeout = self._timeout(time.monotonic(), next_rescan)
                self.wake.wait(timeout)
                self.wake.clear()
        finally:
            watcher.stop()
            follower.close_all()
            if self.runner is not None:
                self.runner.close()  # the rows of the last commits get their rule run
            self._status(time.monotonic(), running=False, force=True)
            self.log.info("stopped", totals=vars(self.book.totals))
        return self.book

    def request_stop(self) -> None:
        """Safe from a signal handler: the loop finishes its batch and returns."""
        self.stop.set()
        self.wake.set()

    def _timeout(self, now: float, next_rescan: float) -> float:
        assert self.follower is not None
        deadlines = [next_rescan, self.last_status + self.settings.status_interval, now + HEAL_INTERVAL_S]
        due = self.follower.next_due()
        if due is not None:
            deadlines.append(due)
        if self.batch:
            deadlines.append(self.last_commit + self.settings.commit_interval)
        return max(0.0, min(deadlines) - now)

    # ---- discovery -------------------------------------------------------------------------

    def _origin(self, path: Path) -> Source | None:
        for source in self.sources:
            if source.matches(path):
                return source
        return None

    def _observe(self, path: Path, *, initial: bool = False) -> None:
        assert self.follower is not None
        origin = self._origin(path)
        if origin is None:  # a rotation named outside the globs may still hold unread lines
            around = next((s for s in self.sources if s.rotation_candidate(path)), None)
            if around is not None and self.follower.is_rotation(path):
                self.follower.observe(path, around, copy_only=True)
                return
        self.follower.observe(path, origin, initial=initial)

    def _scan(self, *, initial: bool = False) -> None:
        """Look at every file of every source (and at files the globs leave out, for renames)."""
        assert self.follower is not None
        paths: list[Path] = []
        for source in self.sources:
            paths.extend(source.scan(everything=True))
        known = {i.path for i in self.follower.registry.by_id.values()} if initial else set()
        # files whose path a checkpoint names first, so each reclaims its own identity
        for path in sorted(set(paths), key=lambda p: (str(p) not in known, str(p))):
            self._observe(path, initial=initial)

    def _scan_dir(self, directory: Path) -> None:
        """A folder appeared or moved in: its files may predate the watch on it."""
        for dirpath, dirnames, filenames in os.walk(directory):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                self._observe(Path(dirpath) / name)

    # ---- reading and committing ------------------------------------------------------------

    def _read_pass(self) -> None:
        """Read from every file that has something new, in turns, committing when the batch is full."""
        assert self.follower is not None
        now = time.monotonic()
        turn = self.follower.due(now)
        while turn and not self.stop.is_set():
            again = []
            for tr in turn:
                try:
                    pieces, more = self.follower.service(tr, now)
                except Exception as exc:  # a bug must not stop the other files
                    self.log.error("file_failed", path=str(tr.path), error=repr(exc))
                    self.book.error(f"{tr.path}: {exc!r}")
                    tr.due = now + self.settings.settle_time
                    continue
                for piece in pieces:
                    self.batch.append(piece)
                    self.pending_bytes += piece.nbytes
                self.max_pending_bytes = max(self.max_pending_bytes, self.pending_bytes)
                if more:
                    again.append(tr)
                if self.pending_bytes >= self.settings.batch_bytes:
                    self._commit()
                if self.stop.is_set():
                    break
            turn = again
            now = time.monotonic()

    def _commit(self) -> None:
        """Commit the batch, retrying until it lands (the batch is idempotent), then run the hook."""
        pieces, self.batch, self.pending_bytes = self.batch, [], 0
        if not pieces:
            return
        started = time.monotonic()
        delay = 0.5
        while True:
            try:
                summary = commit(self.wh, [(p.progress, p.result) for p in pieces])
                break
            except Exception as exc:  # storage trouble: keep the batch, try again
                self.log.error("commit_failed", error=repr(exc), retry_in=delay, files=len(pieces))
                self.book.error(f"commit failed: {exc}")
                if self.stop.is_set() and delay >= MAX_RETRY_S:
                    self.log.error("gave_up", reason="stopping; the files will be re-read at restart")
                    return
                time.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_S)
        self.last_commit = time.monotonic()
        Follower.committed(pieces)
        elapsed_ms = round((self.last_commit - started) * 1000, 1)
        self.book.committed(
            summary.row_count,
            summary.rejects,
            summary.records_read,
            sum(p.nbytes for p in pieces),
            {
                "files": summary.files,
                "duplicates": summary.duplicates,
                "versions": summary.versions,
                "duration_ms": elapsed_ms,
            },
        )
        self.log.debug("commit", rows=summary.row_count, rejects=summary.rejects, ms=elapsed_ms)
        if self.runner is not None:
            self.runner.submit(summary)
        elif self.hook is not None:
            hook_ms = call_hook(self.hook, summary, self.log, self.book)
            if self.book.last_commit is not None:
                self.book.last_commit["after_commit_ms"] = hook_ms
        self._compact(summary)

    def _compact(self, summary: CommitSummary) -> None:
        every = self.settings.compact_every
        if not every:
            return
        for table in summary.versions:
            n = self.table_commits.get(table, 0) + 1
            self.table_commits[table] = n
            if n >= every:
                self.table_commits[table] = 0
                try:
                    metrics = self.wh.compact(table)
                    self.log.info("compacted", table=table, files_removed=metrics.get("numFilesRemoved"))
                except Exception as exc:
                    self.log.warning("compact_failed", table=table, error=repr(exc))

    def _status(self, now: float, *, running: bool = True, force: bool = False) -> None:
        if not force and now - self.last_status < self.settings.status_interval:
            return
        self.last_status = now
        files = self.follower.describe() if self.follower is not None else []
        doc = self.book.document(files, running=running)
        doc["pending_bytes"] = self.pending_bytes
        try:
            write_atomic(self.wh.state_dir / STATUS_FILE, doc)
        except OSError as exc:
            self.log.warning("status_write_failed", error=str(exc))

"""Following files: one tracker per physical file, identities across rotation and truncation.

A ``Tracker`` is a file on disk (device + inode) with an open descriptor, so a file renamed or
deleted while being read is read to its end. What it reads belongs to an ``Identity`` (the
content, see ``ingest.identity``): a rename keeps both; a copy (copytruncate's ``x.log.1``, or
``x.log.1.gz``) is a second tracker of the same identity, which waits while the first one reads
and takes over, at the position reached, when the first lets go; a truncation ends the identity
on that file and its new content is a new generation read from 0.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from ingest.identity import (
    Identity,
    Registry,
    rotated_name,
    tail_window,
)
from ingest.logs import EventLog
from ingest.matching import Matcher
from ingest.reader import GzipUnreadable, SourceGone, open_source, take_lines
from ingest.settings import TailConfig
from ingest.status import StatusBook
from ingest.tracker import Phase, Piece, Tracker, arrow_bytes
from ingest.watch import Source as Origin
from parsers.base import FileParser, ParseOptions, ParseResult, StreamParser


class Follower(Matcher):
    """All trackers, the identity registry, and the reading of new bytes into pieces."""

    def __init__(
        self,
        registry: Registry,
        settings: TailConfig,
        options: ParseOptions,
        log: EventLog,
        book: StatusBook,
    ) -> None:
        self.registry, self.settings, self.options, self.log, self.book = (
            registry,
            settings,
            options,
            log,
            book,
        )
        self.trackers: dict[tuple[int, int], Tracker] = {}
        self.by_path: dict[Path, Tracker] = {}
        self.open_count = 0
        #: file names read per folder, to recognise rotations named outside the globs
        self.names: dict[Path, set[str]] = {}
        for ident in registry.by_id.values():
            self._name(Path(ident.path))

    # ---- discovery -------------------------------------------------------------------------

    def _name(self, path: Path) -> None:
        self.names.setdefault(path.parent, set()).add(path.name)

    def is_rotation(self, path: Path) -> bool:
        """Named like a rotation (``x.log.1``, ``x.log.1.gz``) of a file read in the same folder."""
        return any(rotated_name(path, Path(n)) for n in self.names.get(path.parent, ()))

    def observe(
        self, path: Path, origin: Origin | None, *, initial: bool = False, copy_only: bool = False
    ) -> None:
        """Look at ``path`` after an event or a scan; ``origin`` is None if no source reads it."""
        try:
            st = path.stat()
        except OSError:
            gone = self.by_path.get(path)
            if gone is not None:
                gone.orphan, gone.hot = True, True
            return
        if not stat.S_ISREG(st.st_mode):
            return
        key = (st.st_dev, st.st_ino)
        tr = self.trackers.get(key)
        if tr is not None:
            changed = (st.st_size, st.st_mtime_ns) != (tr.last_size, tr.last_mtime)
            if tr.path != path:
                self.log.info("renamed", old=str(tr.path), new=str(path), file_id=self._fid(tr))
                if self.by_path.get(tr.path) is tr:
                    del self.by_path[tr.path]
                tr.path, tr.orphan, changed = path, False, True
                self._take_path(tr)
            if tr.phase is Phase.DONE and changed:
                tr.phase = Phase.NEW  # a finished file changed: look again
                self._close(tr)
            if changed or tr.phase is not Phase.READING:
                tr.hot = True  # an unchanged file read to its end needs no look (nor a reopen)
            return
        if origin is None:
            return
        tr = Tracker(path, key, origin, initial, copy_only)
        self.trackers[key] = tr
        self._take_path(tr)

    def _take_path(self, tr: Tracker) -> None:
        previous = self.by_path.get(tr.path)
        if previous is not None and previous is not tr:
            previous.orphan, previous.hot = True, True
        self.by_path[tr.path] = tr

    def wake_unwatched(self) -> None:
        """Files no event reaches any more (renamed out of the sources, deleted while open)."""
        for tr in self.trackers.values():
            if tr.orphan or tr.deleted:
                tr.hot = True

    # ---- scheduling ------------------------------------------------------------------------

    def due(self, now: float) -> list[Tracker]:
        return [t for t in self.trackers.values() if t.hot or (t.due is not None and t.due <= now)]

    def next_due(self) -> float | None:
        times = [t.due for t in self.trackers.values() if t.due is not None]
        return min(times) if times else None

    # ---- reading ---------------------------------------------------------------------------

    def service(self, tr: Tracker, now: float) -> tuple[list[Piece], bool]:
        """Read what is new in ``tr``; returns pieces and whether more is ready right now."""
        tr.hot, tr.due = False, None
        if tr.phase is Phase.DONE:
            return [], False
        try:
            if not self._open(tr, now):
                return [], False
            assert tr.handle is not None
            st = tr.handle.stat()
            tr.deleted = st.st_nlink == 0
            if (st.st_size, st.st_mtime_ns) != (tr.last_size, tr.last_mtime):
                tr.last_size, tr.last_mtime, tr.last_change = st.st_size, st.st_mtime_ns, now
            pieces: list[Piece] = []
            if tr.ident is None and not self._resolve(tr, now, pieces):
                return pieces, False
            assert tr.ident is not None
            if isinstance(tr.ident.parser, FileParser):
                return self._whole(tr, now)
            got, more = self._stream(tr, now)
            return pieces + got, more
        except GzipUnreadable as exc:
            if now - tr.last_change < self.settings.settle_time:
                tr.due = tr.last_change + self.settings.settle_time
                tr.note = "gzip not complete yet"
            else:
                self._finish(tr, f"unreadable: {exc}")
                self.book.error(str(exc), path=str(tr.path))
                self.log.warning("gzip_unreadable", path=str(tr.path), error=str(exc))
            return [], False
        except (SourceGone, FileNotFoundError):
            tr.orphan = True
            self._drop_handle(tr)
            self._finish(tr, "vanished")
            return [], False
        except OSError as exc:
            tr.note = f"read failed: {exc.strerror or exc}"
            tr.due = now + self.settings.settle_time
            self.book.error(tr.note, path=str(tr.path))
            self.log.warning("read_failed", path=str(tr.path), error=str(exc))
            return [], False

    def _stream(self, tr: Tracker, now: float) -> tuple[list[Piece], bool]:
        ident = tr.ident
        assert ident is not None and tr.handle is not None
        size = tr.handle.size()
        if size is not None:
            if size < ident.position or not self._tail_intact(tr, ident):
                self._truncated(tr, ident, size, now)
                return [], size > 0
            if size == ident.position:
                self._idle(tr, now)
                return [], False
        idle = now - tr.last_change >= self.settings.partial_line_timeout
        data = take_lines(tr.handle, ident.position, self.settings.chunk_bytes, final=size is None or idle)
        if not data:
            if size is None:  # the archive is read to its end
                self._finish(tr, "archive read")
            else:
                tr.due = tr.last_change + self.settings.partial_line_timeout
                tr.note = "waiting for the end of the last line"
            return [], False
        start = ident.position
        parser = ident.parser
        assert isinstance(parser, StreamParser)
        result = parser.parse(data, source=str(tr.path), base_offset=start, state=ident.state)
        ident.advance(start, data)
        self.registry.refresh(ident)
        tr.last_used, tr.note = now, ""
        shown_size = size if size is not None else ident.position
        piece = Piece(
            ident.progress(str(tr.path), parser.name, start, shown_size, False), result, len(data), ident
        )
        return [piece], size is None or ident.position < size

    def _whole(self, tr: Tracker, now: float) -> tuple[list[Piece], bool]:
        """A whole-file format, read in bounded batches once the file stopped changing."""
        ident = tr.ident
        assert ident is not None and isinstance(ident.parser, FileParser)
        if tr.batches is None:
            if now - tr.last_change < self.settings.settle_time:
                tr.due, tr.note = tr.last_change + self.settings.settle_time, "waiting for the file to settle"
                return [], False
            if tr.compressed:
                self._finish(tr, "compressed whole-file formats are not read; decompress it")
                return [], False
            tr.batches, tr.batch_start = iter(ident.parser.parse_file(tr.path, source=str(tr.path))), 0
        for batch in tr.batches:
            start, tr.batch_start = tr.batch_start, batch.position
            if batch.position <= ident.position:
                continue
            ident.position = batch.position
            progress = ident.progress(str(tr.path), ident.parser.name, start, tr.last_size, False)
            return [Piece(progress, batch.result, arrow_bytes(batch.result), ident)], True
        ident.position = max(ident.position, tr.batch_start)
        ident.complete = True
        progress = ident.progress(str(tr.path), ident.parser.name, tr.batch_start, tr.last_size, True)
        self._finish(tr, "read")
        return [Piece(progress, ParseResult(), 0, ident)], False

    def _tail_intact(self, tr: Tracker, ident: Identity) -> bool:
        """Whether the bytes before the position are still those read (not truncated and regrown)."""
        if ident.position == 0 or (ident.tail_raw is None and ident.tail is None):
            return True
        assert tr.handle is not None
        start, n = tail_window(ident.position)
        data = tr.handle.read_at(start, n)
        return ident.holds_tail(data)

    def _truncated(self, tr: Tracker, ident: Identity, size: int, now: float) -> None:
        self.log.info(
            "truncated", path=str(tr.path), file_id=ident.file_id, position=ident.position, size=size
        )
        self._release(tr)
        tr.excluded.add(ident.file_id)
        tr.phase = Phase.NEW
        tr.hot = size > 0

    def _idle(self, tr: Tracker, now: float) -> None:
        """A fully read file: let go of it once it was deleted or renamed away and stays quiet."""
        tr.note = ""
        if tr.deleted or tr.orphan:
            if now - tr.last_change >= self.settings.close_inactive:
                self._finish(tr, "deleted" if tr.deleted else "moved away")
                self._forget(tr)
            else:
                tr.due = tr.last_change + self.settings.close_inactive

    # ---- open files ------------------------------------------------------------------------

    def _open(self, tr: Tracker, now: float) -> bool:
        if tr.handle is not None:
            return True
        if self.open_count >= self.settings.max_open_files and not self._evict(tr):
            tr.due, tr.note = now + 0.1, "waiting for a free file slot"
            return False
        if tr.orphan:  # its path leads elsewhere; only an open descriptor could reach it
            self._finish(tr, "moved away while closed")
            return False
        handle = open_source(tr.path)
        if handle.key != tr.key:
            handle.close()
            tr.orphan = True
            self._finish(tr, "replaced by another file")
            return False
        tr.handle = handle
        self.open_count += 1
        return True

    def _evict(self, keep: Tracker) -> bool:
        """Close the least recently used file that can be reopened by its path."""
        closable = [
            t
            for t in self.trackers.values()
            if t.handle is not None and t is not keep and not t.orphan and not t.deleted and t.batches is None
        ]
        if not closable:
            return False
        victim = min(closable, key=lambda t: (t.compressed, t.last_used))
        self._drop_handle(victim)
        return True

    def _drop_handle(self, tr: Tracker) -> None:
        if tr.handle is not None:
            tr.handle.close()
            tr.handle = None
            self.open_count -= 1

    def _close(self, tr: Tracker) -> None:
        self._drop_handle(tr)
        tr.batches = None

    def _finish(self, tr: Tracker, note: str) -> None:
        tr.phase, tr.note, tr.due = Phase.DONE, note, None
        self._release(tr)
        self._close(tr)
        if tr.orphan:
            self._forget(tr)

    def _forget(self, tr: Tracker) -> None:
        if self.trackers.get(tr.key) is tr:
            del self.trackers[tr.key]
        if self.by_path.get(tr.path) is tr:
            del self.by_path[tr.path]

    def close_all(self) -> None:
        for tr in list(self.trackers.values()):
            self._close(tr)

    # ---- after a commit, and for the status file --------------------------------------------

    @staticmethod
    def committed(pieces: list[Piece]) -> None:
        for p in pieces:
            p.ident.committed = max(p.ident.committed, p.progress.position)

    @staticmethod
    def _fid(tr: Tracker) -> str | None:
        return tr.ident.file_id if tr.ident is not None else None

    def describe(self) -> list[dict[str, Any]]:
        rows = []
        snapshot = list(self.trackers.values())  # other threads may ask while the tailer runs
        for tr in sorted(snapshot, key=lambda t: str(t.path)):
            ident = tr.ident or tr.shadow_of
            size = tr.last_size if tr.last_size >= 0 and not tr.compressed else None
            committed = ident.committed if ident is not None else None
            rows.append(
                {
                    "path": str(tr.path),
                    "state": tr.phase.value,
                    "file_id": ident.file_id if ident is not None else None,
                    "format": ident.format if ident is not None else None,
                    "offset": committed,
                    "read": ident.position if ident is not None else None,
                    "size": size,
                    "lag_bytes": max(0, size - committed)
                    if size is not None and committed is not None
                    else None,
                    "open": tr.handle is not None,
                    "note": tr.note,
                }
            )
        return rows

"""Matching a file to the content already read: claim it, wait for it, or start a new one.

The evidence is described in ``ingest.identity``; this is where a tracker's file is compared with
the candidates, where a copy waits for the file being read (``SHADOW``), and where a known content
taken over after a restart gets its parser state back (``_replay``).
"""

from __future__ import annotations

from pathlib import Path

from ingest.identity import (
    FINGERPRINT_BYTES,
    TAIL_BYTES,
    Identity,
    Registry,
    digest,
    rotated_name,
    tail_window,
)
from ingest.logs import EventLog
from ingest.reader import GZIP_MAGIC
from ingest.settings import TailConfig
from ingest.status import StatusBook
from ingest.tracker import Phase, Piece, Tracker
from parsers.base import FileParser, ParseOptions, Parser, ParseResult, StreamParser
from parsers.registry import SNIFF_BYTES, detect, parser_for


class Matcher:
    """The identity half of ``Follower`` (which provides the file handling it calls)."""

    registry: Registry
    settings: TailConfig
    options: ParseOptions
    log: EventLog
    book: StatusBook
    trackers: dict[tuple[int, int], Tracker]

    def _open(self, tr: Tracker, now: float) -> bool:
        raise NotImplementedError

    def _drop_handle(self, tr: Tracker) -> None:
        raise NotImplementedError

    def _finish(self, tr: Tracker, note: str) -> None:
        raise NotImplementedError

    def _name(self, path: Path) -> None:
        raise NotImplementedError

    def _resolve(self, tr: Tracker, now: float, pieces: list[Piece]) -> bool:
        """Match the file to a known identity, wait, or start a new one; True if it can be read."""
        assert tr.handle is not None
        head = tr.handle.read_at(0, FINGERPRINT_BYTES)
        if head[:2] == GZIP_MAGIC and not tr.compressed:  # it was empty when opened: an archive being written
            self._drop_handle(tr)
            if not self._open(tr, now):
                return False
            assert tr.handle is not None
            head = tr.handle.read_at(0, FINGERPRINT_BYTES)
        settle = self.settings.settle_time
        if not head:
            tr.phase, tr.note = Phase.WAITING, "empty"
            tr.initial = False  # whatever it gets later is new
            return False
        if tr.compressed and now - tr.last_change < settle:
            tr.phase, tr.due, tr.note = Phase.WAITING, tr.last_change + settle, "archive still changing"
            return False
        size = tr.handle.size()
        maybe_copy = False
        candidates = [c for c in self.registry.candidates(head) if c.file_id not in tr.excluded]
        candidates.sort(key=lambda c: (c.path != str(tr.path), -c.position))
        for cand in candidates:
            verdict = self._verify(tr, cand, size)
            if verdict is None:
                if self._earlier_copy(tr, cand, size):
                    self._finish(tr, f"copy of content already read from {cand.path}")
                    return False
                maybe_copy = True
                continue
            if not verdict:
                continue
            owner = cand.owner
            if owner is not None and owner is not tr:
                if cand.fp_len < FINGERPRINT_BYTES and not rotated_name(tr.path, owner.path):
                    continue  # a different small file that starts like a live one
                tr.phase, tr.shadow_of, tr.note = Phase.SHADOW, cand, f"copy of {owner.path}"
                return False
            return self._claim(tr, cand, head)
        if maybe_copy and now - tr.last_change < settle:
            tr.phase, tr.due, tr.note = Phase.WAITING, tr.last_change + settle, "may be a copy being written"
            return False
        if tr.copy_only:
            self._finish(tr, "outside the globs and not a copy of a file read")
            return False
        timeout = self.settings.partial_line_timeout
        if b"\n" not in head and len(head) < FINGERPRINT_BYTES and now - tr.last_change < timeout:
            tr.phase, tr.due, tr.note = Phase.WAITING, tr.last_change + timeout, "waiting for a first line"
            return False
        parser = self._parser(tr, None)
        if parser is None:
            return False
        ident = self.registry.create(head, str(tr.path))
        ident.tail_raw = b""
        ident.parser, ident.format = parser, parser.name
        ident.state = parser.new_state() if isinstance(parser, StreamParser) else None
        self._own(tr, ident)
        origin = tr.origin
        if tr.initial and origin is not None and origin.config.start_position == "end" and size:
            if isinstance(parser, StreamParser):
                end = self._last_eol(tr, size)
                self._replay(tr, ident, end)
                pieces.append(
                    Piece(
                        ident.progress(str(tr.path), parser.name, end, size, False), ParseResult(), 0, ident
                    )
                )
            else:
                ident.complete = True
                pieces.append(
                    Piece(ident.progress(str(tr.path), parser.name, 0, size, True), ParseResult(), 0, ident)
                )
                self._finish(tr, "existing file skipped (start_position: end)")
                return False
        self.log.info(
            "following", path=str(tr.path), file_id=ident.file_id, format=parser.name, position=ident.position
        )
        return True

    def _last_eol(self, tr: Tracker, size: int) -> int:
        assert tr.handle is not None
        pos = size
        while pos > 0:
            start = max(0, pos - 65536)
            cut = tr.handle.read_at(start, pos - start).rfind(b"\n")
            if cut >= 0:
                return start + cut + 1
            pos = start
        return 0

    def _verify(self, tr: Tracker, cand: Identity, size: int | None) -> bool | None:
        """Does the file hold ``cand``'s bytes before its position? None: too short to tell yet."""
        if cand.position == 0 or (cand.tail is None and cand.tail_raw is None):
            return True  # nothing read yet, or a whole-file format: the first bytes decide
        if size is not None and size < cand.position:
            return None
        assert tr.handle is not None
        start, n = tail_window(cand.position)
        data = tr.handle.read_at(start, n)
        if len(data) < n:
            return False  # an archive shorter than what was read: a different content
        return cand.holds_tail(data)

    def _earlier_copy(self, tr: Tracker, cand: Identity, size: int | None) -> bool:
        """A copy taken before the position reached (copytruncate's copy while the original was
        read on): named like a rotation of it, and equal to it at the last mark it reaches."""
        if size is None or not rotated_name(tr.path, Path(cand.path)):
            return False
        mark = next(((p, raw) for p, raw in reversed(cand.marks) if p <= size), None)
        if mark is None:
            return False
        start, n = tail_window(mark[0])
        assert tr.handle is not None
        return tr.handle.read_at(start, n) == mark[1]

    def _claim(self, tr: Tracker, ident: Identity, head: bytes) -> bool:
        was = ident.path
        self._own(tr, ident)
        ident.learn_head(head)
        self.registry.refresh(ident)
        if ident.parser is None:  # known from the warehouse: rebuild the parser's state
            parser = self._parser(tr, ident.format)
            if parser is None:
                self._release(tr)
                return False
            ident.parser, ident.format = parser, parser.name
            if isinstance(parser, StreamParser):
                ident.state = parser.new_state()
                self._replay(tr, ident, ident.position)
        self.log.info("resumed", path=str(tr.path), was=was, file_id=ident.file_id, position=ident.position)
        if ident.complete and isinstance(ident.parser, FileParser):
            self._finish(tr, "read")
            return False
        return True

    def _own(self, tr: Tracker, ident: Identity) -> None:
        self._name(tr.path)
        ident.owner, ident.path = tr, str(tr.path)
        tr.ident, tr.shadow_of, tr.phase, tr.note = ident, None, Phase.READING, ""

    def _release(self, tr: Tracker) -> None:
        """Let go of the identity; a copy waiting for it gets a look at once."""
        ident, tr.ident = tr.ident, None
        if ident is None or ident.owner is not tr:
            return
        ident.owner = None
        for other in self.trackers.values():
            if other.shadow_of is ident:
                other.hot = True

    def _replay(self, tr: Tracker, ident: Identity, end: int) -> None:
        """Bring the parser's state (line number, header in force) up to ``end`` without rows."""
        assert tr.handle is not None and isinstance(ident.parser, StreamParser)
        pos, chunk, last = 0, self.settings.chunk_bytes, b""
        while pos < end:
            want = min(chunk, end - pos)
            data = tr.handle.read_at(pos, want)
            if not data:
                break
            if pos + len(data) < end:
                cut = data.rfind(b"\n")
                data = data[: cut + 1] if cut >= 0 else data
            if pos == 0:
                ident.learn_head(data)
            ident.parser.skip(data, state=ident.state)
            last = (last + data)[-TAIL_BYTES:]
            pos += len(data)
        ident.position = pos
        ident.tail_raw = last
        ident.tail = digest(last) if pos else None

    def _parser(self, tr: Tracker, fmt: str | None) -> StreamParser | FileParser | None:
        assert tr.handle is not None
        forced = fmt or (tr.origin.config.format if tr.origin is not None else None)
        cls: type[Parser] | None
        if forced:
            cls = parser_for(forced)
        else:
            name = tr.path.with_suffix("") if tr.compressed else tr.path
            cls = detect(tr.handle.read_at(0, SNIFF_BYTES), name)
        if cls is None:
            self.book.skipped[str(tr.path)] = "binary content that no format claims"
            self._finish(tr, "binary content that no format claims")
            return None
        parser = cls(self.options)
        assert isinstance(parser, StreamParser | FileParser)
        return parser

"""One-shot ingest of files and folders: the path every byte takes from disk to the warehouse.

Files are read in bounded chunks, parsed, and committed in batches that may span many small files
(one Delta commit per table per batch, not per file). Each file resumes at its committed
position, found by its content (``ingest.identity``), so running ingest twice over the same
files adds nothing, and a rotated copy of a file already read adds only what it holds beyond.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ingest.identity import (
    FINGERPRINT_BYTES,
    Identity,
    Registry,
    load_registry,
    rotated_name,
    tail_window,
)
from ingest.reader import DEFAULT_CHUNK_BYTES, read_chunks
from parsers.base import FileParser, ParseOptions, ParseResult, StreamParser
from parsers.registry import SNIFF_BYTES, detect, parser_for
from warehouse.commit import CommitSummary, FileProgress, commit
from warehouse.store import Warehouse

#: Commit once pending parsed bytes reach this (bounds memory) ...
DEFAULT_BATCH_BYTES = 32 * 1024 * 1024
#: ... or once this many files are pending (bounds the work lost to a crash).
MAX_PENDING_FILES = 500


@dataclass
class Skipped:
    path: str
    reason: str


@dataclass
class IngestStats:
    files_seen: int = 0
    files_read: int = 0
    bytes_read: int = 0
    records_read: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    rejects: int = 0
    #: records dropped as copies of ones another file had brought (``warehouse.copies``)
    duplicates: int = 0
    commits: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    unreadable: list[Skipped] = field(default_factory=list)

    @property
    def row_count(self) -> int:
        return sum(self.rows.values())

    def add(self, summary: CommitSummary) -> None:
        self.records_read += summary.records_read
        self.rejects += summary.rejects
        self.duplicates += summary.duplicates
        self.commits += 1
        for table, n in summary.rows.items():
            self.rows[table] = self.rows.get(table, 0) + n


ProgressFn = Callable[[int], None]  # called with bytes just read
CommitHook = Callable[[CommitSummary], None]


def is_warehouse_dir(path: Path) -> bool:
    """A knownfix warehouse or one of its Delta tables: never read as logs (it would read itself)."""
    return (path / ".writer.lock").exists() or (path / "_delta_log").is_dir()


def walk(paths: Iterable[Path]) -> Iterator[Path]:
    """Regular files under ``paths`` (recursively), in a stable order.

    Dot-files and warehouse folders (``is_warehouse_dir``) are left out, so ``knownfix ingest .``
    in a folder that also holds the warehouse does not ingest its own tables.
    """
    for root in paths:
        if root.is_file():
            yield root
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            if is_warehouse_dir(here):
                dirnames[:] = []
                continue
            dirnames[:] = sorted(
                d for d in dirnames if not d.startswith(".") and not is_warehouse_dir(here / d)
            )
            for name in sorted(filenames):
                if not name.startswith("."):
                    yield Path(dirpath) / name


class Batcher:
    """Collects parsed pieces of files and commits them together when big enough.

    Commits run on one background thread while the next batch is read and parsed: on two
    cores that overlaps the Delta write with parsing. The hand-over queue holds one batch, so
    at most three batches exist at once (committing, waiting, being filled) and a slow
    warehouse slows reading down instead of letting memory grow.
    """

    def __init__(
        self,
        wh: Warehouse,
        stats: IngestStats,
        hook: CommitHook | None,
        batch_bytes: int,
        options: ParseOptions | None = None,
        *,
        background: bool = True,
    ) -> None:
        self.wh, self.stats, self.hook, self.batch_bytes = wh, stats, hook, batch_bytes
        self.options = options or ParseOptions()
        self.pending: list[tuple[FileProgress, ParseResult]] = []
        self.registry = Registry()
        self.pending_bytes = 0
        self.background = background
        self._queue: queue.Queue[list[tuple[FileProgress, ParseResult]] | None] = queue.Queue(maxsize=1)
        self._worker: threading.Thread | None = None
        self._error: BaseException | None = None

    def add(self, progress: FileProgress, result: ParseResult, nbytes: int) -> None:
        self.pending.append((progress, result))
        self.pending_bytes += nbytes
        if self.pending_bytes >= self.batch_bytes or len(self.pending) >= MAX_PENDING_FILES:
            self.flush()

    def flush(self) -> None:
        """Hand the pending pieces over for commit (or commit them now without a worker)."""
        self._raise_failure()
        if not self.pending:
            return
        batch, self.pending, self.pending_bytes = self.pending, [], 0
        if not self.background:
            self._commit(batch)
            return
        if self._worker is None:
            self._worker = threading.Thread(target=self._run, name="knownfix-commit", daemon=True)
            self._worker.start()
        self._queue.put(batch)

    def close(self) -> None:
        """Commit what is pending and wait until every batch has landed."""
        self.flush()
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join()
            self._worker = None
        self._raise_failure()

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self._error is None:  # after a failure, later batches must not land either
                try:
                    self._commit(batch)
                except BaseException as exc:
                    self._error = exc

    def _commit(self, batch: list[tuple[FileProgress, ParseResult]]) -> None:
        summary = commit(self.wh, batch)
        self.stats.add(summary)
        if self.hook is not None:
            self.hook(summary)

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error


def resolve_identity(registry: Registry, path: Path, head: bytes, f: BinaryIO, size: int) -> Identity:
    """The identity of a file about to be read once: a known one it still holds, else a new one.

    Same rules as the tailer (``ingest.identity``): the first bytes and the bytes before the
    checkpoint must both match, so a rotated copy is not read twice and a file truncated and
    written again is read anew.
    """
    candidates = sorted(registry.candidates(head), key=lambda c: (c.path != str(path), -c.position))
    for cand in candidates:
        if (
            cand.fp_len < FINGERPRINT_BYTES
            and cand.path != str(path)
            and not rotated_name(path, Path(cand.path))
        ):
            continue  # equal first bytes of small, unrelated files are weak evidence
        if cand.position == 0 or (cand.tail is None and cand.tail_raw is None):
            return cand
        if size < cand.position:
            continue
        start, n = tail_window(cand.position)
        f.seek(start)
        data = f.read(n)
        if cand.holds_tail(data):
            return cand
    ident = registry.create(head, str(path))
    ident.tail_raw = b""
    return ident


def ingest_file(
    batcher: Batcher,
    path: Path,
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: ProgressFn | None = None,
) -> None:
    """Parse one file from its committed position to its end into the batcher."""
    stats = batcher.stats
    stats.files_seen += 1
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(SNIFF_BYTES)
            ident = resolve_identity(batcher.registry, path, head, f, size) if head else None
    except OSError as exc:
        stats.unreadable.append(Skipped(str(path), f"cannot read: {exc.strerror or exc}"))
        return
    if ident is None:
        stats.skipped.append(Skipped(str(path), "empty file"))
        return
    parser_cls = parser_for(ident.format) if ident.format else detect(head, path)
    if parser_cls is None:
        stats.skipped.append(Skipped(str(path), "binary content that no format claims"))
        return
    ident.learn_head(head)
    batcher.registry.refresh(ident)
    ident.path = source = str(path)
    start = ident.position
    parser = parser_cls(batcher.options)
    ident.format = parser.name
    if isinstance(parser, StreamParser):
        if start >= size:
            return
        stats.files_read += 1
        try:
            with path.open("rb") as f:
                state = parser.new_state()
                if start > 0:
                    for chunk in read_chunks(f, 0, limit=start, chunk_bytes=chunk_bytes):
                        parser.skip(chunk.data, state=state)
                for chunk in read_chunks(f, start, chunk_bytes=chunk_bytes):
                    result = parser.parse(chunk.data, source=source, base_offset=chunk.start, state=state)
                    ident.advance(chunk.start, chunk.data)
                    done = ident.progress(source, parser.name, chunk.start, size, chunk.end >= size)
                    batcher.add(done, result, len(chunk.data))
                    stats.bytes_read += len(chunk.data)
                    if progress is not None:
                        progress(len(chunk.data))
        except OSError as exc:
            stats.unreadable.append(Skipped(source, f"read failed: {exc.strerror or exc}"))
        return
    assert isinstance(parser, FileParser)
    if ident.complete:
        return
    stats.files_read += 1
    previous = 0
    try:
        for batch in parser.parse_file(path, source=source):
            if batch.position <= start:
                previous = batch.position
                continue
            ident.position = batch.position
            held = sum(t.nbytes for t in batch.result.tables.values())
            batcher.add(ident.progress(source, parser.name, previous, size, False), batch.result, held)
            previous = batch.position
        # mark the file complete with an empty final batch at its last position
        ident.position = max(previous, start)
        ident.complete = True
        batcher.add(ident.progress(source, parser.name, previous, size, True), ParseResult(), 0)
    except OSError as exc:
        stats.unreadable.append(Skipped(source, f"read failed: {exc.strerror or exc}"))
    stats.bytes_read += size
    if progress is not None:
        progress(size)


def ingest_paths(
    wh: Warehouse,
    paths: Iterable[Path],
    *,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: ProgressFn | None = None,
    after_commit: CommitHook | None = None,
    options: ParseOptions | None = None,
) -> IngestStats:
    """Ingest every file under ``paths``; the caller holds the writer lock."""
    stats = IngestStats()
    batcher = Batcher(wh, stats, after_commit, batch_bytes, options)
    batcher.registry = load_registry(wh)
    try:
        for path in walk(paths):
            ingest_file(batcher, path, chunk_bytes=chunk_bytes, progress=progress)
    finally:
        batcher.close()
    return stats

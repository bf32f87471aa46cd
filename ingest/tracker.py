"""What the tailer knows of one file on disk (a ``Tracker``) and of a parsed piece of it."""

from __future__ import annotations

import enum
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ingest.identity import Identity
from ingest.reader import Source
from ingest.watch import Source as Origin
from parsers.base import FileBatch, ParseResult
from warehouse.commit import FileProgress


class Phase(enum.Enum):
    NEW = "new"  # content not yet matched to an identity
    WAITING = "waiting"  # too early to decide (empty, settling, maybe a copy being written)
    SHADOW = "shadow"  # a copy of an identity another tracker is reading
    READING = "reading"
    DONE = "done"  # finished (archive read, whole-file format read, binary, vanished)


@dataclass
class Piece:
    """Parsed bytes of one identity, waiting for the next commit."""

    progress: FileProgress
    result: ParseResult
    nbytes: int
    ident: Identity


@dataclass(eq=False)
class Tracker:
    path: Path
    key: tuple[int, int]
    origin: Origin | None
    initial: bool  # found by the first scan: the source's start_position applies
    copy_only: bool = False  # outside the globs, named like a rotation: read only as a known content
    handle: Source | None = None
    ident: Identity | None = None
    phase: Phase = Phase.NEW
    last_size: int = -1
    last_mtime: int = -1
    last_change: float = field(default_factory=time.monotonic)
    last_used: float = 0.0
    excluded: set[str] = field(default_factory=set)
    shadow_of: Identity | None = None
    orphan: bool = False  # its path now leads elsewhere (renamed away or deleted)
    deleted: bool = False
    note: str = ""
    hot: bool = True
    due: float | None = None
    batches: Iterator[FileBatch] | None = None
    batch_start: int = 0

    @property
    def compressed(self) -> bool:
        return self.handle is not None and self.handle.compressed


def arrow_bytes(result: ParseResult) -> int:
    """Memory a parsed batch holds, so whole-file formats count against ``batch_bytes`` too."""
    return sum(t.nbytes for t in result.tables.values()) + result.rejects.nbytes

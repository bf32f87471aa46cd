"""File identity: which file is this, whatever it is called now?

A file is known by its content, not by its path, so a renamed or copied (rotated) file is not read
twice. An identity records what was read of a file: a digest of its first bytes (up to
``FINGERPRINT_BYTES``; fewer for a short file, which keeps its identity as it grows because the
bytes it had do not change) and a digest of the ``TAIL_BYTES`` just before the position read so
far. Both are stored with every checkpoint (``files`` table), so after a restart a file is the
identity whose first bytes *and* bytes before the checkpoint it still holds:

* a rename, a rotated copy or its ``.gz`` (decompressed) holds them: it resumes where reading
  stopped, and what it holds beyond is read once;
* a file truncated and written again (copytruncate, ``> file``) does not: it is a new generation,
  read from 0, even when it starts with the same header;
* a different file that merely starts with the same header does not either.

Generations of the same first bytes are told apart by a ``~n`` suffix of ``file_id``.
"""

from __future__ import annotations

import collections
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warehouse.commit import FILES_TABLE, FileProgress
from warehouse.store import Warehouse

FINGERPRINT_BYTES = 1024
TAIL_BYTES = 128
#: Positions remembered per identity (in memory) with the bytes before them.
MARKS = 64


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


@dataclass(frozen=True)
class Fingerprint:
    file_id: str
    length: int  # how many leading bytes the id hashes (< FINGERPRINT_BYTES for short files)


def fingerprint_bytes(head: bytes) -> Fingerprint:
    """Identity of a file whose first bytes are ``head`` (at least FINGERPRINT_BYTES if it has them)."""
    part = head[:FINGERPRINT_BYTES]
    return Fingerprint(digest(part), len(part))


def fingerprint(path: Path) -> Fingerprint:
    with path.open("rb") as f:
        return fingerprint_bytes(f.read(FINGERPRINT_BYTES))


def prefix_id(head: bytes, length: int) -> str:
    """The id a file would have had when it was ``length`` bytes long."""
    return digest(head[:length])


def tail_window(position: int) -> tuple[int, int]:
    """The byte range whose digest is the tail evidence of ``position``."""
    start = max(0, position - TAIL_BYTES)
    return start, position - start


def rotated_name(path: Path, other: Path) -> bool:
    """Whether ``path`` is named like a rotation of ``other`` (x.log -> x.log.1, x.log.1.gz).

    Only consulted for files shorter than the fingerprint, where equal first bytes are weak
    evidence: a small file named like a rotation of a live one is its copy, otherwise not.
    """
    name, base = path.name, other.name
    stem = base.rsplit(".", 1)[0]
    return name != base and (
        name.startswith(base) or name.startswith(stem + ".") or name.startswith(stem + "-")
    )


@dataclass(eq=False)
class Identity:
    """What is known of one file's content and how far it was read.

    ``position`` is what has been read and handed to the batch; ``committed`` what the warehouse
    holds. ``parser``/``state`` and ``owner`` (the tracker reading it) exist only at run time.
    """

    file_id: str
    fingerprint: str
    fp_len: int
    position: int = 0
    committed: int = 0
    tail: str | None = None  # digest of the bytes before ``position``; None = not checked
    tail_raw: bytes | None = None  # those bytes, once a tracker has read them
    head: bytes = b""  # first bytes known (at most FINGERPRINT_BYTES)
    path: str = ""
    format: str | None = None
    complete: bool = False
    parser: Any = None
    state: Any = None
    owner: Any = None
    #: (position, bytes before it) of the last pieces read, to recognise a copy taken meanwhile
    marks: collections.deque[tuple[int, bytes]] = field(
        default_factory=lambda: collections.deque(maxlen=MARKS)
    )

    def learn_head(self, head: bytes) -> None:
        """Take a longer verified head (first bytes) of the same file."""
        head = head[:FINGERPRINT_BYTES]
        if len(head) > len(self.head):
            self.head = head

    def holds_tail(self, data: bytes) -> bool:
        """Whether ``data``, the bytes just before the position, are the ones read; once they
        match the stored digest they are kept, so later checks compare bytes."""
        if self.tail_raw is not None:
            return data == self.tail_raw
        if digest(data) == self.tail:
            self.tail_raw = data
            return True
        return False

    def advance(self, start: int, data: bytes) -> None:
        """Record that ``data`` (bytes ``start``..) was read: new position, tail and head."""
        end = start + len(data)
        if start <= len(self.head) < min(end, FINGERPRINT_BYTES):
            self.head += data[len(self.head) - start : FINGERPRINT_BYTES - start]
        raw = data[-TAIL_BYTES:]
        if len(raw) < TAIL_BYTES and self.tail_raw is not None and start == self.position:
            raw = (self.tail_raw + data)[-TAIL_BYTES:]
        if len(raw) == min(TAIL_BYTES, end):
            self.tail_raw, self.tail = raw, digest(raw)
            self.marks.append((end, raw))
        else:  # too little context to know the window: unknown rather than wrong
            self.tail_raw, self.tail = None, None
        self.position = end

    def evidence(self) -> tuple[str, int]:
        """(fingerprint, its length) to store with the checkpoint."""
        if self.head:
            return digest(self.head), len(self.head)
        return self.fingerprint, self.fp_len

    def progress(self, path: str, fmt: str, start: int, size: int | None, complete: bool) -> FileProgress:
        fp, fp_len = self.evidence()
        return FileProgress(
            self.file_id,
            path,
            fmt,
            start,
            self.position,
            size,
            complete,
            fingerprint=fp,
            fingerprint_bytes=fp_len,
            tail_digest=self.tail,
        )


@dataclass
class Registry:
    """Every identity known (committed or being read), indexed by fingerprint."""

    by_id: dict[str, Identity] = field(default_factory=dict)
    index: dict[tuple[int, str], list[Identity]] = field(default_factory=dict)
    short_lengths: dict[int, int] = field(default_factory=dict)  # fp_len < FINGERPRINT_BYTES -> count

    def add(self, ident: Identity) -> None:
        self.by_id[ident.file_id] = ident
        self._index(ident)

    def _index(self, ident: Identity) -> None:
        self.index.setdefault((ident.fp_len, ident.fingerprint), []).append(ident)
        if ident.fp_len < FINGERPRINT_BYTES:
            self.short_lengths[ident.fp_len] = self.short_lengths.get(ident.fp_len, 0) + 1

    def refresh(self, ident: Identity) -> None:
        """Re-index ``ident`` after its known head grew (a short file got longer)."""
        fp, fp_len = ident.evidence()
        if (fp_len, fp) == (ident.fp_len, ident.fingerprint):
            return
        key = (ident.fp_len, ident.fingerprint)
        bucket = self.index.get(key, [])
        if ident in bucket:
            bucket.remove(ident)
            if not bucket:
                del self.index[key]
            if ident.fp_len < FINGERPRINT_BYTES:
                self.short_lengths[ident.fp_len] -= 1
                if not self.short_lengths[ident.fp_len]:
                    del self.short_lengths[ident.fp_len]
        ident.fingerprint, ident.fp_len = fp, fp_len
        self._index(ident)

    def candidates(self, head: bytes) -> list[Identity]:
        """Identities whose recorded first bytes are a prefix of ``head``, longest evidence first."""
        found: list[Identity] = []
        lengths = sorted((n for n in self.short_lengths if n <= len(head)), reverse=True)
        if len(head) >= FINGERPRINT_BYTES:
            lengths.insert(0, FINGERPRINT_BYTES)
        for n in lengths:
            found.extend(self.index.get((n, digest(head[:n])), []))
        return found

    def new_id(self, head: bytes) -> str:
        """A fresh ``file_id`` for content starting with ``head`` (a new generation if taken)."""
        base = digest(head[:FINGERPRINT_BYTES])
        if base not in self.by_id:
            return base
        n = 1
        while f"{base}~{n}" in self.by_id:
            n += 1
        return f"{base}~{n}"

    def create(self, head: bytes, path: str) -> Identity:
        head = head[:FINGERPRINT_BYTES]
        ident = Identity(self.new_id(head), digest(head), len(head), head=head, path=path)
        self.add(ident)
        return ident


def load_registry(wh: Warehouse) -> Registry:
    """Every identity the warehouse has a checkpoint for, with its evidence at that checkpoint."""
    registry = Registry()
    if not wh.has_table(FILES_TABLE):
        return registry
    from warehouse.query import connect  # local: DuckDB is only needed at start-up

    con = connect(wh, tables=[FILES_TABLE])
    try:
        columns = {r[0] for r in con.execute(f"describe {FILES_TABLE}").fetchall()}
        if "tail_digest" in columns:
            evidence = (
                "arg_max(fingerprint, position), arg_max(fingerprint_bytes, position), "
                "arg_max(tail_digest, position)"
            )
        else:  # written before identities carried evidence: the id is the first bytes' digest
            evidence = "null, null, null"
        rows = con.execute(
            f"select file_id, max(position), arg_max(path, position), arg_max(format, position), "
            f"bool_or(complete), {evidence} from {FILES_TABLE} group by file_id"
        ).fetchall()
    finally:
        con.close()
    for file_id, position, path, fmt, complete, fp, fp_len, tail in rows:
        registry.add(
            Identity(
                file_id,
                fp or file_id.split("~")[0],
                int(fp_len) if fp_len is not None else min(int(position), FINGERPRINT_BYTES),
                position=int(position),
                committed=int(position),
                tail=tail,
                path=path,
                format=fmt,
                complete=bool(complete),
            )
        )
    return registry

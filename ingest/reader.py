"""Reading a file in bounded chunks of complete lines, from any byte position.

``read_chunks`` serves one-shot ingest; ``PlainSource``/``GzipSource`` and ``take_lines`` serve the
tailer, which keeps files open (a renamed or deleted file stays readable through its descriptor)
and reads ``.gz`` archives by streaming decompression at decompressed offsets.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024


@dataclass
class Chunk:
    data: bytes
    start: int  # byte offset of data[0] in the file

    @property
    def end(self) -> int:
        return self.start + len(self.data)


def read_chunks(
    f: BinaryIO,
    start: int,
    *,
    limit: int | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    final: bool = True,
) -> Iterator[Chunk]:
    """Chunks of whole lines from ``start`` up to ``limit`` (default: end of file).

    Each chunk ends just after a newline. With ``final`` the bytes after the last newline count as
    a line too (a finished file); without it they are left for later (a file still being written).
    Memory stays at about ``chunk_bytes`` whatever the file size.
    """
    pos = start
    want = chunk_bytes
    while True:
        room = want if limit is None else min(want, limit - pos)
        f.seek(pos)
        block = f.read(room) if room > 0 else b""
        if not block:
            return
        cut = block.rfind(b"\n")
        if len(block) < room or (limit is not None and pos + len(block) >= limit):
            # the end of what may be read: the tail after the last newline is a line when final
            if cut == len(block) - 1 or final:
                yield Chunk(block, pos)
                return
            if cut >= 0:
                yield Chunk(block[: cut + 1], pos)
            return
        if cut < 0:
            if want > 8 * chunk_bytes:  # a pathological line: hand it over whole
                yield Chunk(block, pos)
                pos += len(block)
                want = chunk_bytes
            else:
                want *= 2  # a line longer than a chunk: read more at once
            continue
        # one copy at most: a block that ends on a newline is handed over as it is, and the
        # bytes after the last newline are read again with the next block (seek back)
        yield Chunk(block if cut == len(block) - 1 else block[: cut + 1], pos)
        pos += cut + 1
        want = chunk_bytes


class SourceGone(OSError):
    """The file vanished or became unreadable between two looks."""


class GzipUnreadable(OSError):
    """A ``.gz`` file is incomplete (still being written) or corrupt."""


#: A line longer than this is handed over whole even without its newline (bounds memory).
MAX_LINE_BYTES = 8 * 1024 * 1024


class PlainSource:
    """An open regular file read at absolute positions; keeps reading after rename or delete."""

    compressed = False

    def __init__(self, path: Path) -> None:
        try:
            self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError as exc:
            raise SourceGone(exc.errno, exc.strerror, str(path)) from None
        st = os.fstat(self.fd)
        self.key = (st.st_dev, st.st_ino)

    def stat(self) -> os.stat_result:
        return os.fstat(self.fd)

    def size(self) -> int | None:
        return os.fstat(self.fd).st_size

    def read_at(self, pos: int, n: int) -> bytes:
        parts: list[bytes] = []
        got = 0
        while got < n:
            block = os.pread(self.fd, n - got, pos + got)
            if not block:
                break
            parts.append(block)
            got += len(block)
        return b"".join(parts)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class GzipSource:
    """Decompressed bytes of a ``.gz`` file, streamed: positions are decompressed offsets.

    Reading forward is streaming; reading behind the window restarts decompression, which the
    tailer avoids by reading sequentially. Memory stays at about the largest read.
    """

    compressed = True

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.raw = path.open("rb")
        except FileNotFoundError as exc:
            raise SourceGone(exc.errno, exc.strerror, str(path)) from None
        st = os.fstat(self.raw.fileno())
        self.key = (st.st_dev, st.st_ino)
        self._rewind()

    def _rewind(self) -> None:
        self.raw.seek(0)
        self.gz = gzip.GzipFile(fileobj=self.raw, mode="rb")
        self.buf = b""
        self.buf_start = 0

    def stat(self) -> os.stat_result:
        return os.fstat(self.raw.fileno())

    def size(self) -> int | None:
        return None  # unknown until decompressed

    def _more(self, n: int) -> bytes:
        try:
            return self.gz.read(n)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise GzipUnreadable(f"{self.path}: incomplete or corrupt gzip ({exc})") from None

    def read_at(self, pos: int, n: int) -> bytes:
        if pos < self.buf_start:
            self._rewind()
        end = self.buf_start + len(self.buf)
        while end < pos:  # skip forward without keeping the bytes
            block = self._more(min(1 << 20, pos - end))
            if not block:
                return b""
            self.buf, self.buf_start, end = b"", end + len(block), end + len(block)
        self.buf = self.buf[pos - self.buf_start :]
        self.buf_start = pos
        while len(self.buf) < n:
            block = self._more(max(n - len(self.buf), 64 * 1024))
            if not block:
                break
            self.buf += block
        return self.buf[:n]

    def close(self) -> None:
        self.raw.close()


Source = PlainSource | GzipSource


GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: Path) -> bool:
    """By content (magic bytes), so a rotated ``x.log.1`` compressed without suffix is seen too."""
    try:
        with path.open("rb") as f:
            return f.read(2) == GZIP_MAGIC
    except OSError:
        return False


def open_source(path: Path) -> Source:
    return GzipSource(path) if is_gzip(path) else PlainSource(path)


def take_lines(src: Source, pos: int, chunk_bytes: int, *, final: bool) -> bytes:
    """Whole lines starting at ``pos``, about ``chunk_bytes`` of them.

    A trailing line without newline is included only when ``final`` (the file is finished or was
    idle long enough); a line longer than ``MAX_LINE_BYTES`` is handed over as it is.
    """
    data = src.read_at(pos, chunk_bytes)
    if len(data) < chunk_bytes:  # reached the current end
        if final:
            return data
        return data[: data.rfind(b"\n") + 1]
    cut = data.rfind(b"\n")
    if cut >= 0:
        return data[: cut + 1]
    buf = data
    while len(buf) < MAX_LINE_BYTES:
        more = src.read_at(pos + len(buf), chunk_bytes)
        nl = more.find(b"\n")
        if nl >= 0:
            return buf + more[: nl + 1]
        buf += more
        if len(more) < chunk_bytes:
            return buf if final else b""
    return buf

"""Reading a file in bounded chunks of complete lines, from any byte position."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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
    f.seek(start)
    pos = start
    carry = b""
    while True:
        want = chunk_bytes if limit is None else min(chunk_bytes, limit - pos - len(carry))
        block = f.read(want) if want > 0 else b""
        buf = carry + block
        if not block:
            if buf and final:
                yield Chunk(buf, pos)
            return
        cut = buf.rfind(b"\n")
        if cut < 0:
            if len(buf) > 8 * chunk_bytes:  # a pathological line: hand it over whole
                yield Chunk(buf, pos)
                pos += len(buf)
                carry = b""
            else:
                carry = buf
            continue
        yield Chunk(buf[: cut + 1], pos)
        pos += cut + 1
        carry = buf[cut + 1 :]

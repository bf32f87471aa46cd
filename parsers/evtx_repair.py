"""Getting the readable records of a damaged ``.evtx`` chunk back through the ``evtx`` package.

The package reads a chunk's records one after another by their sizes: a record whose header is
broken ends the chunk for it, and a chunk whose magic is broken is skipped whole, although the
records after the damage are intact. This module does not parse records. It repairs the framing
of a copy of such a chunk (the chunk magic, and a filler record over the broken stretch whose
size leads to the next intact record) and hands the copy to the package, which then parses the
intact records as it would have. The filler itself comes back as an error or an empty record and
is dropped; what cannot be recovered stays a reject in the parser's reconciliation.

Framing used (the documented EVTX layout): a chunk is 64 KiB with a 512-byte header starting
``ElfChnk\\0``; a record starts with the magic ``2a 2a 00 00``, its size (u32, a multiple of 8),
its record id (u64), and ends with a copy of its size.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import evtx

CHUNK_MAGIC = b"ElfChnk\x00"
RECORD_MAGIC = 0x2A2A
CHUNK_HEADER = 512
MIN_RECORD = 32  # header (24), an end-of-stream token and the trailing size, rounded up to 8


def intact_records(chunk: bytes, first_id: int, last_id: int) -> list[tuple[int, int, int]]:
    """(offset, size, record id) of every record in ``chunk`` whose framing is whole."""
    found = []
    off = CHUNK_HEADER
    while off + MIN_RECORD <= len(chunk):
        magic, size, rid = struct.unpack_from("<IIQ", chunk, off)
        if (
            magic == RECORD_MAGIC
            and size >= MIN_RECORD
            and size % 8 == 0
            and off + size <= len(chunk)
            and first_id <= rid <= last_id
            and struct.unpack_from("<I", chunk, off + size - 4)[0] == size
        ):
            found.append((off, size, rid))
            off += size
        else:
            off += 8
    return found


def repaired(chunk: bytes, first_id: int, last_id: int) -> bytes | None:
    """A copy of ``chunk`` whose records chain from the header to the last intact one; None if
    nothing needed or could be bridged."""
    records = intact_records(chunk, first_id, last_id)
    if not records:
        return None
    out = bytearray(chunk)
    out[:8] = CHUNK_MAGIC
    pos = CHUNK_HEADER
    for off, size, _ in records:
        if off > pos:
            gap = off - pos
            if gap < MIN_RECORD:
                return None
            # a new header over the broken one; the bytes after it stay, since later records may
            # use templates defined there. Record id 0 is declared by no chunk, so whatever the
            # package makes of the filler is dropped.
            out[pos : pos + 24] = struct.pack("<IIQQ", RECORD_MAGIC, gap, 0, 0)
            out[off - 4 : off] = struct.pack("<I", gap)
        pos = off + size
    return bytes(out)


def recover(
    header: bytes, chunk: bytes, first_id: int, last_id: int, wanted: set[int]
) -> Iterator[dict[str, Any]]:
    """The package's records (``records_json`` items) of the repaired chunk whose ids are in
    ``wanted``; the file header is the original one so the package accepts the copy."""
    fixed = repaired(chunk, first_id, last_id)
    if fixed is None:
        return
    records: Iterator[Any] = evtx.PyEvtxParser(io.BytesIO(header + fixed), indent=False).records_json()
    while True:
        try:
            record: dict[str, Any] = next(records)
        except StopIteration:
            return
        except Exception:  # the filler or a record damaged inside: it stays a reject
            continue
        if record["event_record_id"] in wanted:
            wanted.discard(record["event_record_id"])
            yield record


def read_chunk(path: Path, start: int, size: int) -> bytes:
    with path.open("rb") as f:
        f.seek(start)
        data = f.read(size)
    return data + b"\x00" * (size - len(data))

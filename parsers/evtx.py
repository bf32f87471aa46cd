"""``.evtx`` files: the ``evtx`` package (a Rust parser) reads the records, this module types them.

The package renders each record as compact JSON; ``evtx_json`` reads the records into ``events``
columns a few thousand at a time, and the few of an odd shape one by one (``_add``, the
reference reading). ``bench/evtx_events.py`` measures this against the package's own iteration.

Damage is counted, never silent. The package skips an unreadable chunk with an error, but it
also stops reading a chunk without a word at a record whose header is broken, and it ignores a
partial last chunk. So the chunk headers' declared record ids are reconciled with the records
actually returned; the records a repaired copy of a damaged chunk gives back are read from it
(``evtx_repair``), and every declared record that still did not come back is a reject saying why.
A file cut inside a chunk (a copy of a log still being written) is read padded to the chunk
boundary, which lets the package return the complete records before the cut.
"""

from __future__ import annotations

import io
import json
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import evtx
import numpy as np
import orjson

from parsers.base import FileBatch, Reject
from parsers.events_rows import Batcher
from parsers.events_schema import RAW_LIMIT, EventsParser, clip, flatten_json_event
from parsers.evtx_json import read_batch, system_values
from parsers.evtx_repair import read_chunk, recover

MAGIC = b"ElfFile\x00"
CHUNK_MAGIC = b"ElfChnk\x00"
HEADER_SIZE = 4096
CHUNK_SIZE = 65536
#: A chunk holds at most a few thousand records; a wider declared range is a damaged header.
MAX_CHUNK_RECORDS = 10_000
#: Records read into columns at a time, while their texts are fresh in the CPU's caches.
READ_RECORDS = 2000
#: Stop if the package reports this many errors in a row (it could not be making progress).
MAX_CONSECUTIVE_ERRORS = 10_000

_RECORD_ERROR = re.compile(r"record number (\d+)", re.IGNORECASE)
_CHUNK_ERROR = re.compile(r"chunk number (\d+)", re.IGNORECASE)


@dataclass
class Chunk:
    """What a chunk header declares: its index and the record ids it holds."""

    index: int
    first_id: int
    last_id: int
    truncated_by: int = 0  # bytes of the chunk missing at the end of the file


@dataclass
class Ledger:
    """Declared record ids per chunk against the ids the package returned, in bounded counters."""

    chunks: list[Chunk]
    starts: np.ndarray = field(init=False)
    ends: np.ndarray = field(init=False)
    base: np.ndarray = field(init=False)
    seen: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        # identical ranges (copies of a chunk) share one counter slot range; declared counts add up
        ranges = sorted({(c.first_id, c.last_id) for c in self.chunks})
        self.starts = np.array([r[0] for r in ranges], dtype=np.int64)
        self.ends = np.array([r[1] for r in ranges], dtype=np.int64)
        sizes = self.ends - self.starts + 1
        self.base = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64) if len(sizes) else sizes
        self.seen = np.zeros(int(sizes.sum()) if len(sizes) else 0, dtype=np.int32)

    def count(self, ids: np.ndarray) -> None:
        if not len(self.starts) or not len(ids):
            return
        slot = np.searchsorted(self.starts, ids, side="right") - 1
        ok = slot >= 0
        ok[ok] &= ids[ok] <= self.ends[slot[ok]]
        np.add.at(self.seen, self.base[slot[ok]] + (ids[ok] - self.starts[slot[ok]]), 1)

    def declares(self, record_id: int | None) -> bool:
        if record_id is None or not len(self.starts):
            return False
        slot = int(np.searchsorted(self.starts, record_id, side="right")) - 1
        return slot >= 0 and record_id <= int(self.ends[slot])

    def missing(self) -> Iterator[tuple[int, list[Chunk]]]:
        """(record id, chunks declaring it) for each declared copy that never came back."""
        by_range: dict[tuple[int, int], list[Chunk]] = {}
        for c in self.chunks:
            by_range.setdefault((c.first_id, c.last_id), []).append(c)
        for i, (first, last) in enumerate(zip(self.starts.tolist(), self.ends.tolist(), strict=True)):
            owners = by_range[(first, last)]
            seen = self.seen[self.base[i] : self.base[i] + (last - first + 1)]
            for offset in np.flatnonzero(seen < len(owners)).tolist():
                for _ in range(len(owners) - int(seen[offset])):
                    yield first + offset, owners


def read_chunks(path: Path) -> tuple[list[Chunk], int]:
    """Chunk headers of the file (unused, all-zero chunks left out) and the file size."""
    chunks: list[Chunk] = []
    with path.open("rb") as f:
        size = f.seek(0, io.SEEK_END)
        index = 0
        while HEADER_SIZE + index * CHUNK_SIZE + 40 <= size:
            start = HEADER_SIZE + index * CHUNK_SIZE
            f.seek(start)
            head = f.read(40)
            first_id, last_id = struct.unpack_from("<QQ", head, 24)
            plausible = 0 < first_id <= last_id and last_id - first_id < MAX_CHUNK_RECORDS
            if plausible:  # an unused chunk is all zeros; a damaged magic keeps its numbers
                chunks.append(Chunk(index, first_id, last_id, max(0, start + CHUNK_SIZE - size)))
            index += 1
    return chunks, size


class _Padded(io.RawIOBase):
    """The file, read as if zero-filled up to the end of its last (partial) chunk."""

    def __init__(self, path: Path, length: int) -> None:
        self._f = path.open("rb")
        self._length = length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), max(0, self._length - self._pos))
        self._f.seek(self._pos)
        data = self._f.read(want)
        data += b"\x00" * (want - len(data))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        self._f.close()
        super().close()


@dataclass
class _Failure:
    reason: str
    record_id: int | None = None
    chunk: int | None = None
    after: int | None = None  # header id of the last record returned before the error


class EvtxParser(EventsParser):
    """Windows ``.evtx`` logs (binary, magic ``ElfFile``), including dirty and damaged copies."""

    name: ClassVar[str] = "evtx"

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        return 100 if head.startswith(MAGIC) else 0

    def parse_file(self, path: Path, *, source: str, batch_records: int = 50_000) -> Iterator[FileBatch]:
        chunks, size = read_chunks(path)
        ledger = Ledger(chunks)
        padded = HEADER_SIZE + -(-max(size - HEADER_SIZE, 0) // CHUNK_SIZE) * CHUNK_SIZE
        handle: Any = str(path) if padded == size else _Padded(path, padded)
        out = Batcher(batch_records)
        failures: list[_Failure] = []
        texts: list[str] = []
        ids: list[int] = []  # record header ids (a forwarded event's XML carries its origin's id)
        records: Iterator[Any]
        try:
            records = evtx.PyEvtxParser(handle, indent=False).records_json()
        except Exception as exc:  # the package refused the file as a whole
            records = iter(())
            failures.append(_Failure(f"evtx reader could not open the file: {exc}"))
        try:
            for stream in (lambda: _guarded(records, failures), lambda: _recovered(path, ledger)):
                room = min(READ_RECORDS, batch_records - len(out))
                for record in stream():
                    texts.append(record["data"])
                    ids.append(record["event_record_id"])
                    if len(texts) >= room:
                        self._read(out, texts, ids, source)
                        ledger.count(np.array(ids, dtype=np.int64))
                        texts, ids = [], []
                        if out.full():
                            yield out.take()
                        room = min(READ_RECORDS, batch_records - len(out))
                self._read(out, texts, ids, source)
                ledger.count(np.array(ids, dtype=np.int64))  # all seen before repairs are tried
                texts, ids = [], []
            for reject in self._final(failures, ledger, out.position, source):
                out.rejects.append(reject)
                out.position += 1
            if len(out) or not out.handed:  # positions grow from batch to batch
                yield out.take()
        finally:
            if isinstance(handle, _Padded):
                handle.close()

    def _read(self, out: Batcher, texts: list[str], ids: list[int], source: str) -> None:
        """The package's records: the regular ones as a table at once, the others one by one."""
        table, others = read_batch(texts, out.position, source)
        if table is not None:
            out.rows_table(table)
        for i in others:
            self._add(out, texts[i], out.position + i, ids[i], source)
        out.position += len(texts)

    def _add(self, out: Batcher, text: str, offset: int, record_id: int, source: str) -> None:
        """One record of the package: a row, or a reject if its values did not survive."""
        try:
            event = orjson.loads(text)["Event"]
            values = system_values(event)
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            values = {}
        if values.get("event_id") is None or values.get("time_text") is None:
            # a record cut short (or damaged) comes back from the package with its values empty
            out.reject(
                self.name,
                source,
                offset,
                None,
                f"record id {record_id} came back from the evtx reader without an event "
                "id or time: its values are damaged or cut short",
                text,
            )
            return
        values["event_data"] = flatten_json_event(event)
        values["format"] = "evtx"
        values["raw"] = text if len(text) <= RAW_LIMIT else clip(text)
        out.row(values, source, offset, None)

    def _final(self, failures: list[_Failure], ledger: Ledger, ordinal: int, source: str) -> list[Reject]:
        """Rejects for what the package could not return, after all records have been seen."""
        rejects: list[Reject] = []
        by_record = {f.record_id: f for f in failures if f.record_id is not None}
        by_chunk = {f.chunk: f for f in failures if f.chunk is not None}
        by_after = {f.after: f for f in failures if f.record_id is None and f.chunk is None}
        used: set[int] = set()
        damaged: dict[int, int] = {}  # chunk index -> first record id an error was reported for
        for record_id, owners in ledger.missing():
            chunk = owners[0]
            failure = by_record.get(record_id)
            if failure is None:
                failure = next((by_chunk[c.index] for c in owners if c.index in by_chunk), None)
            if failure is None and id(by_after.get(record_id - 1)) not in used:
                failure = by_after.get(record_id - 1)
            if failure is not None:
                used.add(id(failure))
                damaged.setdefault(chunk.index, record_id)
                reason = f"record id {record_id} not readable: {failure.reason}"
            elif chunk.truncated_by:
                reason = (
                    f"record id {record_id} (declared by chunk {chunk.index}) is not in the file: "
                    f"it ends {chunk.truncated_by} bytes short of that chunk's end (a partial copy)"
                )
            else:
                cause = damaged.get(chunk.index)
                reason = (
                    f"record id {record_id} (declared by chunk {chunk.index}) was not returned by "
                    "the evtx reader: a damaged record before it in the chunk stops the chunk"
                    + (f" (record id {cause})" if cause is not None else "")
                )
            rejects.append(self._reject(source, ordinal + len(rejects), reason, record_id))
        declared = {c.index for c in ledger.chunks}
        for failure in failures:
            if id(failure) in used or failure.chunk in declared or ledger.declares(failure.record_id):
                continue  # its records were recovered (see evtx_repair), or are rejects above
            rejects.append(self._reject(source, ordinal + len(rejects), failure.reason, failure.record_id))
        return rejects

    def _reject(self, source: str, offset: int, reason: str, record_id: int | None) -> Reject:
        raw = None if record_id is None else json.dumps({"event_record_id": record_id})
        return Reject(source, offset, None, self.name, reason, raw)


def _recovered(path: Path, ledger: Ledger) -> Iterator[dict[str, Any]]:
    """Records of damaged chunks that a repaired copy lets the package read (see evtx_repair)."""
    wanted: dict[int, tuple[Chunk, set[int]]] = {}
    for record_id, owners in ledger.missing():
        for chunk in owners:
            wanted.setdefault(chunk.index, (chunk, set()))[1].add(record_id)
    if not wanted:
        return
    with path.open("rb") as f:
        header = f.read(HEADER_SIZE)
    for index, (chunk, missing) in sorted(wanted.items()):
        raw = read_chunk(path, HEADER_SIZE + index * CHUNK_SIZE, CHUNK_SIZE)
        yield from recover(header, raw, chunk.first_id, chunk.last_id, missing)


def _guarded(records: Iterator[Any], failures: list[_Failure]) -> Iterator[dict[str, Any]]:
    """The package's records; its errors are collected (it carries on after them)."""
    consecutive = 0
    last: int | None = None
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except Exception as exc:
            text = str(exc)
            rec = _RECORD_ERROR.search(text)
            chunk = _CHUNK_ERROR.search(text)
            failures.append(
                _Failure(
                    text, int(rec.group(1)) if rec else None, int(chunk.group(1)) if chunk else None, last
                )
            )
            consecutive += 1
            if consecutive >= MAX_CONSECUTIVE_ERRORS:
                failures.append(_Failure(f"gave up after {consecutive} consecutive reader errors"))
                return
            continue
        consecutive = 0
        last = record["event_record_id"]
        yield record

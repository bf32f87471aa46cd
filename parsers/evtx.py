"""``.evtx`` files: the ``evtx`` package (a Rust parser) reads the records, DuckDB types them.

The package renders each record as JSON; one vectorised DuckDB pass per batch turns those strings
into the ``events`` columns, so the Python loop per record is a single list append (``bench/
evtx_events.py`` measures it against the package's own iteration).

Damage is counted, never silent. The package skips an unreadable chunk with an error, but it
also stops reading a chunk without a word at a record whose header is broken, and it ignores a
partial last chunk. So the chunk headers' declared record ids are reconciled with the records
actually returned: every declared record that did not come back is a reject saying why. A file
cut inside a chunk (a copy of a log still being written) is read padded to the chunk boundary,
which lets the package return the complete records before the cut.
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

import duckdb
import evtx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parsers.base import FileBatch, ParseResult, Reject, rejects_table
from parsers.events_schema import (
    BASE_SCHEMA,
    EVENT_DATA,
    EVENTS_TABLE,
    RAW_LIMIT,
    EventsParser,
    clip,
    connect,
    finish,
    flatten_json_event,
)
from parsers.evtx_repair import read_chunk, recover

MAGIC = b"ElfFile\x00"
CHUNK_MAGIC = b"ElfChnk\x00"
HEADER_SIZE = 4096
CHUNK_SIZE = 65536
#: A chunk holds at most a few thousand records; a wider declared range is a damaged header.
MAX_CHUNK_RECORDS = 10_000
#: Stop if the package reports this many errors in a row (it could not be making progress).
MAX_CONSECUTIVE_ERRORS = 10_000

_J = "$.Event.System."
_PATHS = [
    _J + 'Provider."#attributes".Name',
    _J + 'Provider."#attributes".EventSourceName',
    _J + 'EventID."#text"',
    _J + "EventID",
    _J + 'EventID."#attributes".Qualifiers',
    _J + "Version",
    _J + "Level",
    _J + "Task",
    _J + "Opcode",
    _J + "Keywords",
    _J + 'TimeCreated."#attributes".SystemTime',
    _J + "EventRecordID",
    _J + 'Execution."#attributes".ProcessID',
    _J + 'Execution."#attributes".ThreadID',
    _J + "Channel",
    _J + "Computer",
    _J + 'Security."#attributes".UserID',
]
_PATH_LIST = ", ".join("'" + p + "'" for p in _PATHS)

# EventData in its two common shapes becomes a MAP here: named ``Data`` (a flat object) and unnamed
# ``Data`` (``{"Data": {"#text": [...]}, "Binary": ...}``). Anything else (UserData, nested values,
# named and unnamed mixed) is flagged ``py`` and flattened by ``flatten_json_event``.
_BLANK = "' ' || chr(9) || chr(10) || chr(12) || chr(13)"
_CLEAN = (
    "CASE WHEN {x} IS NULL OR trim({x}, " + _BLANK + ") = '' THEN '' "
    "WHEN contains({x}, chr(13)) THEN replace(replace({x}, chr(13) || chr(10), chr(10)), chr(13), chr(10)) "
    "ELSE {x} END"
)
_UNNAMED_TEXTS = (
    "CASE WHEN json_type(ed, '$.Data.\"#text\"') = 'ARRAY' THEN json_extract_string(ed, '$.Data.\"#text\"[*]') "
    "WHEN json_type(ed, '$.Data') = 'OBJECT' THEN [json_extract_string(ed, '$.Data.\"#text\"')] "
    "ELSE [json_extract_string(ed, '$.Data')] END"
)
_BINARY = "NULLIF(json_extract_string(ed, '$.Binary'), '')"

EXTRACT_SQL = f"""
WITH r AS (
    SELECT json_extract_string(j, [{_PATH_LIST}]) AS v,
           json_extract(j, '$.Event.EventData') AS ed,
           contains(j, '"UserData":') AS has_ud
    FROM records
), k AS (
    SELECT *,
        CASE WHEN ed IS NULL OR has_ud OR json_type(ed) <> 'OBJECT' THEN NULL
             WHEN list_has_all(['Data', 'Binary', '#attributes'], json_keys(ed)) THEN
                  CASE WHEN list_contains(json_keys(ed), 'Data') THEN 'unnamed' END
             WHEN NOT list_contains(json_keys(ed), 'Data') AND NOT regexp_matches(
                  regexp_replace(ed, '"#attributes":\\{{[^{{}}]*\\}}', '', 'g'), '":[\\[{{]') THEN 'named'
        END AS shape
    FROM r
)
SELECT * REPLACE (CASE WHEN cardinality(event_data) = 0 THEN NULL ELSE event_data END AS event_data)
FROM (SELECT
    CAST(CASE WHEN length(v[11]) > 27 THEN left(v[11], 26) || 'Z' ELSE v[11] END AS TIMESTAMPTZ) AS time_created,
    v[16] AS computer,
    v[15] AS channel,
    coalesce(v[1], v[2]) AS provider,
    coalesce(TRY_CAST(v[3] AS INTEGER), TRY_CAST(v[4] AS INTEGER)) AS event_id,
    TRY_CAST(v[5] AS INTEGER) AS qualifiers,
    TRY_CAST(v[6] AS INTEGER) AS version,
    TRY_CAST(v[7] AS INTEGER) AS level,
    TRY_CAST(v[8] AS INTEGER) AS task,
    TRY_CAST(v[9] AS INTEGER) AS opcode,
    v[10] AS keywords,
    TRY_CAST(v[12] AS BIGINT) AS record_id,
    TRY_CAST(v[13] AS BIGINT) AS process_id,
    TRY_CAST(v[14] AS BIGINT) AS thread_id,
    v[17] AS user_sid,
    CASE
        WHEN shape = 'named' THEN map_from_entries(list_transform(
            list_filter(map_entries(json_transform(ed, '"MAP(VARCHAR, VARCHAR)"')),
                        lambda e: e.key <> '#attributes' AND NOT (e.key = 'Binary' AND coalesce(e.value, '') = '')),
            lambda e: {{'key': e.key, 'value': {_CLEAN.format(x="e.value")}}}))
        WHEN shape = 'unnamed' THEN map_from_entries(list_concat(
            list_transform({_UNNAMED_TEXTS}, lambda x, i: {{'key': CAST(i AS VARCHAR), 'value': {_CLEAN.format(x="x")}}}),
            CASE WHEN {_BINARY} IS NULL THEN [] ELSE [{{'key': 'Binary', 'value': {_BINARY}}}] END))
    END AS event_data,
    has_ud OR (ed IS NOT NULL AND shape IS NULL AND json_type(ed) <> 'NULL') AS py
FROM k)
"""


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
        con = connect()
        failures: list[_Failure] = []
        ordinal = 0
        pending: list[str] = []
        ids: list[int] = []  # record header ids (a forwarded event's XML carries its origin's id)
        records: Iterator[Any]
        try:
            records = evtx.PyEvtxParser(handle, indent=False).records_json()
        except Exception as exc:  # the package refused the file as a whole
            records = iter(())
            failures.append(_Failure(f"evtx reader could not open the file: {exc}"))
        try:
            for record in _guarded(records, failures):
                pending.append(record["data"])
                ids.append(record["event_record_id"])
                if len(pending) >= batch_records:
                    yield self._batch(con, pending, ids, ordinal, source, ledger)
                    ordinal += len(pending)
                    pending, ids = [], []
            if pending:
                yield self._batch(con, pending, ids, ordinal, source, ledger)
                ordinal += len(pending)
            for pending, ids in _recovered(path, ledger, batch_records):
                yield self._batch(con, pending, ids, ordinal, source, ledger)
                ordinal += len(pending)
            final = self._final(failures, ledger, ordinal, source)
            if final.result.records_read or ordinal == 0:  # positions must grow from batch to batch
                yield final
        finally:
            if isinstance(handle, _Padded):
                handle.close()
            con.close()

    def _batch(
        self,
        con: duckdb.DuckDBPyConnection,
        data: list[str],
        ids: list[int],
        first: int,
        source: str,
        ledger: Ledger,
    ) -> FileBatch:
        base = extract(con, data, first, source)
        ledger.count(np.array(ids, dtype=np.int64))
        result = ParseResult(records_read=len(data))
        # a record cut short (or damaged) comes back from the package with its values empty
        hollow = pc.or_(pc.is_null(base.column("event_id")), pc.is_null(base.column("time_created")))
        if pc.any(hollow).as_py():
            rows = np.flatnonzero(hollow.to_numpy(zero_copy_only=False)).tolist()
            result.rejects = rejects_table(
                [
                    Reject(
                        source,
                        first + i,
                        None,
                        self.name,
                        f"record id {ids[i]} came back from the evtx reader without an event id or "
                        "time: its values are damaged or cut short",
                        clip(data[i], 4096),
                    )
                    for i in rows
                ]
            )
            base = base.filter(pc.invert(hollow))
        result.add(EVENTS_TABLE, finish(con, base))
        return FileBatch(result, first + len(data))

    def _final(self, failures: list[_Failure], ledger: Ledger, ordinal: int, source: str) -> FileBatch:
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
        result = ParseResult(records_read=len(rejects))
        if rejects:
            result.rejects = rejects_table(rejects)
        return FileBatch(result, max(ordinal + len(rejects), 1))

    def _reject(self, source: str, offset: int, reason: str, record_id: int | None) -> Reject:
        raw = None if record_id is None else json.dumps({"event_record_id": record_id})
        return Reject(source, offset, None, self.name, reason, raw)


def _recovered(path: Path, ledger: Ledger, batch_records: int) -> Iterator[tuple[list[str], list[int]]]:
    """Records of damaged chunks that a repaired copy lets the package read (see evtx_repair)."""
    wanted: dict[int, tuple[Chunk, set[int]]] = {}
    for record_id, owners in ledger.missing():
        for chunk in owners:
            wanted.setdefault(chunk.index, (chunk, set()))[1].add(record_id)
    if not wanted:
        return
    with path.open("rb") as f:
        header = f.read(HEADER_SIZE)
    data: list[str] = []
    ids: list[int] = []
    for index, (chunk, missing) in sorted(wanted.items()):
        raw = read_chunk(path, HEADER_SIZE + index * CHUNK_SIZE, CHUNK_SIZE)
        for record in recover(header, raw, chunk.first_id, chunk.last_id, missing):
            data.append(record["data"])
            ids.append(record["event_record_id"])
            if len(data) >= batch_records:
                yield data, ids
                data, ids = [], []
    if data:
        yield data, ids


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


def extract(con: duckdb.DuckDBPyConnection, data: list[str], first: int, source: str) -> pa.Table:
    """Base ``events`` columns of a batch of records in the package's JSON form."""
    n = len(data)
    text = pa.array(data, pa.string())
    con.register("records", pa.table({"j": text}))
    try:
        got = con.sql(EXTRACT_SQL).to_arrow_table()
    finally:
        con.unregister("records")
    event_data = got.column("event_data")
    py = got.column("py").to_numpy(zero_copy_only=False)
    if py.any():
        event_data = _patch(event_data, np.flatnonzero(py), data)
    columns = {name: got.column(name) for name in got.column_names}
    columns["event_data"] = event_data
    columns["format"] = pa.array(["evtx"] * n, pa.string())
    columns["raw"] = _clipped(text)
    columns["source_file"] = pa.array([source] * n, pa.string())
    columns["source_offset"] = pa.array(np.arange(first, first + n, dtype=np.int64))
    arrays = []
    for f in BASE_SCHEMA:
        column = columns.get(f.name)
        arrays.append(pa.nulls(n, f.type) if column is None else column.cast(f.type))
    return pa.Table.from_arrays(arrays, schema=BASE_SCHEMA)


def _patch(event_data: pa.ChunkedArray, rows: np.ndarray, data: list[str]) -> pa.Array:
    """Replace the flagged rows' event data by the Python flattening of their JSON."""
    fallback = []
    for i in rows.tolist():
        try:
            event = json.loads(data[i]).get("Event", {})
        except (ValueError, AttributeError):
            event = {}
        fallback.append(flatten_json_event(event) if isinstance(event, dict) else None)
    fast = event_data.combine_chunks().cast(EVENT_DATA)
    merged = pa.concat_arrays([fast, pa.array(fallback, EVENT_DATA)])
    index = np.arange(len(fast), dtype=np.int64)
    index[rows] = len(fast) + np.arange(len(rows), dtype=np.int64)
    return merged.take(pa.array(index))


def _clipped(text: pa.Array) -> pa.Array:
    lengths = np.asarray(pc.utf8_length(text).to_numpy(zero_copy_only=False))
    if not len(lengths) or lengths.max() <= RAW_LIMIT:
        return text
    values = text.to_pylist()
    return pa.array([clip(v) for v in values], pa.string())

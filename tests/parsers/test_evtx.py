"""The .evtx parser on the real public samples, and on damaged copies of them made here.

Files read (see ../shared/samples/README.md):
- ``omerbenamram-evtx_2-vss_7-System.evtx``: github omerbenamram/evtx, ``samples/2-vss_7-System.evtx``
  (MIT or Apache-2.0), a real System log of 1,160 records, copied while open (dirty header).
- ``omerbenamram-evtx_MSExchange_Management_wec.evtx``: github omerbenamram/evtx,
  ``samples/MSExchange_Management_wec.evtx``, one forwarded (WEC) MSExchange CmdletLogs record.
"""

from __future__ import annotations

import struct
from pathlib import Path

import evtx
import pyarrow as pa
import pytest

from parsers.evtx import CHUNK_SIZE, HEADER_SIZE, EvtxParser, read_chunks
from parsers.winevent_xml import WinEventXmlParser

SYSTEM = "evtx/omerbenamram-evtx_2-vss_7-System.evtx"
WEC = "evtx/omerbenamram-evtx_MSExchange_Management_wec.evtx"


def parse(path: Path, batch_records: int = 50_000) -> tuple[pa.Table, list[dict[str, object]], int]:
    tables, rejects, read = [], [], 0
    positions = []
    for batch in EvtxParser().parse_file(path, source=str(path), batch_records=batch_records):
        assert batch.result.reconciles()
        positions.append(batch.position)
        read += batch.result.records_read
        if "events" in batch.result.tables:
            tables.append(batch.result.tables["events"])
        rejects.extend(batch.result.rejects.to_pylist())
    assert positions == sorted(set(positions))
    return pa.concat_tables(tables) if tables else pa.table({}), rejects, read


def records(path: Path) -> list[int]:
    """Byte offsets of the records in chunk order, found by walking each chunk's record sizes."""
    data = path.read_bytes()
    found = []
    for start in range(HEADER_SIZE, len(data), CHUNK_SIZE):
        off = start + 512
        while off + 24 <= start + CHUNK_SIZE:
            magic, size = struct.unpack_from("<II", data, off)
            if magic != 0x2A2A or size < 24:
                break
            found.append(off)
            off += size
    return found


@pytest.fixture
def system(shared_samples: Path) -> Path:
    return shared_samples / SYSTEM


def test_the_dirty_system_log_reads_every_record(system: Path) -> None:
    """The header says dirty and 4 chunks; the file holds 1,160 records in 11 used chunks."""
    header = system.read_bytes()[:HEADER_SIZE]
    assert struct.unpack_from("<H", header, 0x2A)[0] == 4 and struct.unpack_from("<I", header, 0x78)[0] & 1
    assert len(read_chunks(system)[0]) == 11
    events, rejects, read = parse(system)
    assert (events.num_rows, rejects, read) == (1160, [], 1160)
    assert events.column("source_offset").to_pylist() == list(range(1160))  # record ordinals
    assert events.column("line_number").null_count == 1160
    assert set(events.column("format").to_pylist()) == {"evtx"}


def test_lsasrv_6041_carries_the_credssp_target(system: Path) -> None:
    events, _, _ = parse(system)
    rows = [r for r in events.to_pylist() if (r["provider"], r["event_id"]) == ("LsaSrv", 6041)]
    assert len(rows) == 8
    assert {r["target"] for r in rows} == {"TERMSRV/74.118.139.108", "TERMSRV/74.118.139.11"}
    assert all(dict(r["event_data"])["1"] == r["target"] for r in rows)  # type: ignore[arg-type]
    first = rows[0]
    assert (first["level"], first["level_name"], first["qualifiers"], first["channel"]) == (
        2,
        "Error",
        0,
        "System",
    )


def test_forwarded_record_keeps_its_origin_record_id(shared_samples: Path) -> None:
    """The WEC copy's header says record 1; the event's own EventRecordID (3229) is the one shown."""
    events, rejects, _ = parse(shared_samples / WEC)
    assert rejects == []
    row = events.to_pylist()[0]
    assert (row["record_id"], row["provider"], row["channel"]) == (
        3229,
        "MSExchange CmdletLogs",
        "MSExchange Management",
    )
    assert dict(row["event_data"])["1"] == "Set-Mailbox"  # type: ignore[arg-type]


def test_batches_of_any_size_give_the_same_rows(system: Path) -> None:
    whole, _, _ = parse(system)
    small, _, read = parse(system, batch_records=97)
    assert read == 1160 and small.drop_columns(["raw"]).equals(whole.drop_columns(["raw"]))


def test_the_package_xml_of_the_same_records_gives_the_same_rows(system: Path, tmp_path: Path) -> None:
    """The evtx package's XML rendering, read as a wevtutil stream, lands as the same rows."""
    xml = tmp_path / "system.xml"
    xml.write_text("".join(r["data"] for r in evtx.PyEvtxParser(str(system)).records()), encoding="utf-8")
    from_xml = pa.concat_tables(
        b.result.tables["events"] for b in WinEventXmlParser().parse_file(xml, source="x") if b.result.tables
    )
    from_evtx, _, _ = parse(system)
    skip = ["raw", "format", "source_file", "source_offset", "line_number"]
    assert from_xml.drop_columns(skip).to_pylist() == from_evtx.drop_columns(skip).to_pylist()


def _damaged(system: Path, tmp_path: Path, damage: dict[int, bytes], size: int | None = None) -> Path:
    data = bytearray(system.read_bytes())
    for offset, value in damage.items():
        data[offset : offset + len(value)] = value
    copy = tmp_path / "damaged.evtx"
    copy.write_bytes(bytes(data[:size]))
    return copy


def same_rows(damaged: pa.Table, original: pa.Table, lost: set[int]) -> bool:
    """The damaged copy's rows are the original's, less ``lost`` record ids (order aside)."""
    skip = ["source_file", "source_offset"]
    keep = [r for r in original.drop_columns(skip).to_pylist() if r["record_id"] not in lost]
    got = damaged.drop_columns(skip).to_pylist()
    return sorted(got, key=lambda r: r["record_id"]) == sorted(keep, key=lambda r: r["record_id"])


def test_a_chunk_with_a_broken_magic_is_read_from_a_repaired_copy(system: Path, tmp_path: Path) -> None:
    """The package skips chunk 3 (ids 340-457) with an error; its records are all intact, and a
    copy with the magic restored gives every one of them back."""
    chunk3 = HEADER_SIZE + 3 * CHUNK_SIZE
    copy = _damaged(system, tmp_path, {chunk3: b"XXXXXXXX"})
    with pytest.raises(RuntimeError, match="chunk number 3"):
        for _ in evtx.PyEvtxParser(str(copy)).records_json():
            pass
    events, rejects, read = parse(copy)
    assert (events.num_rows, rejects, read) == (1160, [], 1160)
    assert same_rows(events, parse(system)[0], set())


def test_a_broken_record_header_costs_only_that_record(system: Path, tmp_path: Path) -> None:
    """The package stops reading a chunk, without an error, at a record whose magic is broken.
    The chunk header's declared ids show the loss; a repaired copy returns the 96 intact records
    after it, and the broken one is a reject that says where it was declared."""
    bad = records(system)[141]  # record id 142, in chunk 1 (ids 132-238)
    copy = _damaged(system, tmp_path, {bad: b"\x00\x00\x00\x00"})
    assert sum(1 for _ in evtx.PyEvtxParser(str(copy)).records_json()) == 1063  # silently short
    events, rejects, read = parse(copy)
    assert (events.num_rows, len(rejects), read) == (1159, 1, 1160)
    assert str(rejects[0]["reason"]).startswith("record id 142 (declared by chunk 1) was not returned")
    assert same_rows(events, parse(system)[0], {142})


def test_a_chunk_damaged_beyond_repair_leaves_counted_rejects(system: Path, tmp_path: Path) -> None:
    """Magic and record framing of chunk 3 overwritten: nothing comes back, all 118 are rejects."""
    chunk3 = HEADER_SIZE + 3 * CHUNK_SIZE
    copy = _damaged(system, tmp_path, {chunk3: b"X" * 8, chunk3 + 512: b"\xff" * (CHUNK_SIZE - 512)})
    events, rejects, read = parse(copy)
    assert (events.num_rows, len(rejects), read) == (1042, 118, 1160)
    assert {int(str(r["reason"]).split()[2]) for r in rejects} == set(range(340, 458))
    assert all("Failed to parse chunk number 3" in str(r["reason"]) for r in rejects)


def test_a_garbled_record_body_costs_one_record(system: Path, tmp_path: Path) -> None:
    bad = records(system)[141]
    copy = _damaged(system, tmp_path, {bad + 34: b"\xee" * 50})
    events, rejects, _ = parse(copy)
    assert events.num_rows == 1159 and len(rejects) == 1
    assert str(rejects[0]["reason"]).startswith(
        "record id 142 not readable: Failed to parse record number 142"
    )
    assert rejects[0]["raw"] == '{"event_record_id": 142}'


def test_a_copy_cut_inside_a_chunk_keeps_the_records_before_the_cut(system: Path, tmp_path: Path) -> None:
    """A partial last chunk (a copy of a log being written) is read up to its last whole record."""
    cut = HEADER_SIZE + 2 * CHUNK_SIZE + 30_000
    copy = _damaged(system, tmp_path, {}, size=cut)
    events, rejects, read = parse(copy)
    ids = events.column("record_id").to_pylist()
    assert max(ids) == 286 and len(ids) == 286  # 48 of chunk 2's records precede the cut
    # record 287 is cut in the middle: the package returns it hollow, which is a reject
    assert [int(str(r["reason"]).split()[2]) for r in rejects] == list(range(287, 340))
    assert "without an event id or time" in str(rejects[0]["reason"])
    assert all("short of that chunk's end" in str(r["reason"]) for r in rejects[1:])
    assert read == 339


def test_garbage_after_the_magic_is_a_reject_not_a_crash(tmp_path: Path) -> None:
    junk = tmp_path / "junk.evtx"
    junk.write_bytes(b"ElfFile\x00" + bytes(range(256)) * 40)
    events, rejects, read = parse(junk)
    assert events.num_rows == 0 and read == len(rejects)

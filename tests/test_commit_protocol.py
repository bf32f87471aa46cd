"""The exactly-once commit protocol of warehouse.commit, crash points included."""

from __future__ import annotations

import pyarrow as pa

from parsers.lines import LinesParser
from warehouse.commit import FILES_TABLE, FileProgress, commit, resume_position
from warehouse.query import run
from warehouse.store import Warehouse

DATA = b"".join(f"line {i}\n".encode() for i in range(100))


def _parse(data: bytes, base: int) -> tuple[FileProgress, object]:
    p = LinesParser()
    st = p.new_state()
    return FileProgress("f1", "x.log", "lines", base, base + len(data)), p.parse(
        data, source="x.log", base_offset=base, state=st
    )


def _texts(wh: Warehouse) -> list[str]:
    return [r["text"] for r in run(wh, "select text from lines order by source_offset").to_pylist()]


def test_recommitting_the_same_batch_adds_nothing(warehouse: Warehouse) -> None:
    progress, result = _parse(DATA, 0)
    commit(warehouse, [(progress, result)])  # type: ignore[list-item]
    commit(warehouse, [(progress, result)])  # type: ignore[list-item]
    assert _texts(warehouse) == [f"line {i}" for i in range(100)]
    assert resume_position(warehouse, "f1") == len(DATA)


def test_crash_after_data_before_files_checkpoint_neither_loses_nor_doubles(warehouse: Warehouse) -> None:
    half = DATA.index(b"line 50")
    progress, first = _parse(DATA[:half], 0)
    commit(warehouse, [(progress, first)])  # type: ignore[list-item]
    # simulate a crash: the data table got the second half, the files checkpoint did not
    _, second = _parse(DATA[half:], half)
    warehouse.append("lines", second.tables["lines"], {"f1": len(DATA)})  # type: ignore[attr-defined]
    assert resume_position(warehouse, "f1") == half
    # the reader resumes at the files checkpoint and re-parses the second half
    progress2, again = _parse(DATA[half:], half)
    commit(warehouse, [(progress2, again)])  # type: ignore[list-item]
    assert _texts(warehouse) == [f"line {i}" for i in range(100)]
    files = run(warehouse, f"select sum(records_read) n from {FILES_TABLE}").to_pylist()[0]["n"]
    assert files == 100


def test_a_re_read_in_smaller_pieces_never_moves_a_table_checkpoint_back(warehouse: Warehouse) -> None:
    # a crash after the data table got the whole file, before any files checkpoint; after the
    # restart the file is read again from 0, in pieces smaller than what the table already holds
    _, whole = _parse(DATA, 0)
    warehouse.append("lines", whole.tables["lines"], {"f1": len(DATA)})  # type: ignore[attr-defined]
    third, two_thirds = DATA.index(b"line 33"), DATA.index(b"line 66")
    for lo, hi in ((0, third), (third, two_thirds), (two_thirds, len(DATA))):
        progress, piece = _parse(DATA[lo:hi], lo)
        commit(warehouse, [(progress, piece)])  # type: ignore[list-item]
        assert warehouse.checkpoint("lines", "f1") == len(DATA)
    assert _texts(warehouse) == [f"line {i}" for i in range(100)]
    assert resume_position(warehouse, "f1") == len(DATA)


def test_every_row_is_stamped_with_the_version_of_its_commit(warehouse: Warehouse) -> None:
    progress, result = _parse(DATA[:7], 0)
    v0 = commit(warehouse, [(progress, result)]).versions["lines"]  # type: ignore[list-item]
    progress, result = _parse(DATA[7:14], 7)
    v1 = commit(warehouse, [(progress, result)]).versions["lines"]  # type: ignore[list-item]
    got = run(warehouse, "select _version, count(*) n from lines group by 1 order by 1").to_pylist()
    assert got == [{"_version": v0, "n": 1}, {"_version": v1, "n": 1}]
    assert isinstance(run(warehouse, "select 1 x"), pa.Table)

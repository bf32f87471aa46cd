"""Small files, partial lines, repeated headers, many files, globs and the start position."""

from __future__ import annotations

from pathlib import Path

from ingest.settings import SourceConfig
from tests.tail.helpers import (
    Running,
    append,
    assert_exactly_once,
    has_all,
    id_counts,
    ids,
    lines,
    settings,
    wait_until,
)
from warehouse.query import run
from warehouse.store import Warehouse


def _logs(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    return logs


def _count(wh: Warehouse, sql: str) -> int:
    return int(run(wh, sql).column(0)[0].as_py())


def test_small_files_are_read_at_once_and_keep_their_identity_as_they_grow(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    logs = _logs(tmp_path)
    names = [logs / f"tiny{n:02}.log" for n in range(40)]
    same = "a short line that two unrelated files both hold\n"
    with Running(warehouse, logs):
        for n, path in enumerate(names):
            append(path, f"id=s{n:02}-0 tiny\n")  # ~17 bytes: far below the 1 KiB fingerprint
        append(logs / "left.log", same)
        append(logs / "right.log", same)
        wait_until(has_all(warehouse, {f"s{n:02}-0" for n in range(40)}), "every tiny file")
        for n, path in enumerate(names):
            append(path, f"id=s{n:02}-1 grown\n")
        wait_until(has_all(warehouse, {f"s{n:02}-1" for n in range(40)}), "their second lines")
    for n, path in enumerate(names):
        append(path, f"id=s{n:02}-2 after restart {'x' * 1100}\n")  # now longer than the fingerprint
    with Running(warehouse, logs):
        wait_until(has_all(warehouse, {f"s{n:02}-2" for n in range(40)}), "lines written while stopped")
    assert_exactly_once(warehouse, {f"s{n:02}-{k}" for n in range(40) for k in range(3)})
    assert _count(warehouse, f"select count(*) from lines where text = '{same.strip()}'") == 2


def test_a_partial_last_line_waits_for_its_end(tmp_path: Path, warehouse: Warehouse) -> None:
    logs = _logs(tmp_path)
    part, other = logs / "part.log", logs / "other.log"
    with Running(warehouse, logs, settings(partial_line_timeout=60)):
        append(part, "id=p1 complete line\nid=p2 first half")
        append(other, "id=o1 a line elsewhere\n")
        wait_until(has_all(warehouse, {"p1", "o1"}), "complete lines")
        append(other, "id=o2 committed after the half line was seen\n")
        wait_until(has_all(warehouse, {"o2"}), "a later commit")
        assert "p2" not in id_counts(warehouse)
        append(part, " and second half\r\nid=p3 next\r\n")
        wait_until(has_all(warehouse, {"p2", "p3"}), "the finished line")
    assert_exactly_once(warehouse, {"p1", "p2", "p3", "o1", "o2"})
    texts = run(warehouse, "select text from lines where text like 'id=p2%'").column(0).to_pylist()
    assert texts == ["id=p2 first half and second half"]


def test_a_partial_last_line_is_flushed_after_the_idle_time(tmp_path: Path, warehouse: Warehouse) -> None:
    logs = _logs(tmp_path)
    log = logs / "app.log"
    with Running(warehouse, logs, settings(partial_line_timeout=0.5)):
        append(log, "id=f1 ends without a newline")
        wait_until(has_all(warehouse, {"f1"}), "the idle flush")
        append(log, "\nid=f2 next line\n")
        wait_until(has_all(warehouse, {"f2"}), "the next line")
    assert_exactly_once(warehouse, {"f1", "f2"})
    # the newline that later ended the flushed line is an empty line of its own, not a duplicate
    assert run(warehouse, "select text from lines order by source_offset").column(0).to_pylist() == [
        "id=f1 ends without a newline",
        "",
        "id=f2 next line",
    ]


def test_repeated_header_after_restart_of_tailer_and_writer(tmp_path: Path, warehouse: Warehouse) -> None:
    logs = _logs(tmp_path)
    log = logs / "app.log"
    header = "== app log, started ==\n== columns: time id payload ==\n"
    append(log, header + lines("h", 0, 100))
    with Running(warehouse, logs):
        wait_until(has_all(warehouse, ids("h", 0, 100)), "first part")
    append(log, lines("h", 100, 150) + header + lines("h", 150, 200))  # the writer restarted meanwhile
    with Running(warehouse, logs):
        wait_until(has_all(warehouse, ids("h", 100, 200)), "lines after restart")
    assert_exactly_once(warehouse, ids("h", 0, 200))
    assert _count(warehouse, "select count(*) from lines where text like '== app log%'") == 2
    numbers = run(warehouse, "select line_number from lines order by source_offset").column(0).to_pylist()
    assert numbers == list(range(1, 205))  # line numbers continue across the restart


def test_files_sharing_their_first_kilobyte_are_different_files(tmp_path: Path, warehouse: Warehouse) -> None:
    logs = _logs(tmp_path)
    banner = "[service] the same banner opens every log of this service\n" * 25  # > 1 KiB
    a, b = logs / "a.log", logs / "b.log"
    append(a, banner + lines("A", 0, 50))
    with Running(warehouse, logs):
        wait_until(has_all(warehouse, ids("A", 0, 50)), "a.log")
        append(b, banner + lines("B", 0, 80))
        wait_until(has_all(warehouse, ids("B", 0, 80)), "b.log")
    append(a, lines("A", 50, 60))
    append(b, lines("B", 80, 90))
    with Running(warehouse, logs):
        wait_until(has_all(warehouse, ids("A", 50, 60) | ids("B", 80, 90)), "both after restart")
    assert_exactly_once(warehouse, ids("A", 0, 60) | ids("B", 0, 90))


def test_many_files_at_once_with_few_open_descriptors(tmp_path: Path, warehouse: Warehouse) -> None:
    logs = _logs(tmp_path)
    for n in range(300):
        append(
            logs / f"f{n:03}" / "app.log" if n % 3 == 0 else logs / f"f{n:03}.log", lines(f"m{n:03}-", 0, 10)
        )
    with Running(warehouse, logs, settings(max_open_files=16)) as tail:
        expected = set().union(*(ids(f"m{n:03}-", 0, 10) for n in range(300)))
        wait_until(has_all(warehouse, expected), "300 files")
        for n in range(0, 300, 2):
            path = logs / f"f{n:03}" / "app.log" if n % 3 == 0 else logs / f"f{n:03}.log"
            append(path, lines(f"m{n:03}-", 10, 15))
        expected |= set().union(*(ids(f"m{n:03}-", 10, 15) for n in range(0, 300, 2)))
        wait_until(has_all(warehouse, expected), "appends to closed files")
        assert tail.tailer.follower is not None
        assert tail.tailer.follower.open_count <= 16
    assert_exactly_once(warehouse, expected)


def test_include_exclude_and_recursion(tmp_path: Path, warehouse: Warehouse) -> None:
    logs = _logs(tmp_path)
    (logs / "sub").mkdir()
    append(logs / "a.log", "id=top\n")
    append(logs / "b.txt", "id=txt\n")
    append(logs / "skip.log", "id=skipped\n")
    append(logs / "sub" / "c.log", "id=nested\n")
    flat = SourceConfig(path=logs, include=["*.log"], exclude=["skip*"], recursive=False)
    with Running(warehouse, [flat]):
        wait_until(has_all(warehouse, {"top"}), "a.log")
        append(logs / "sub" / "d.log", "id=nested2\n")
        append(logs / "a.log", "id=top2\n")
        wait_until(has_all(warehouse, {"top2"}), "a.log again")
    assert set(id_counts(warehouse)) == {"top", "top2"}
    deep = SourceConfig(path=logs, include=["*.log", "sub/*.txt"], exclude=["skip*"])
    with Running(warehouse, [deep]):
        (logs / "sub" / "new").mkdir()
        append(logs / "sub" / "new" / "e.log", "id=newdir\n")
        append(logs / "sub" / "f.txt", "id=subtxt\n")
        wait_until(has_all(warehouse, {"nested", "nested2", "newdir", "subtxt"}), "nested files")
    assert_exactly_once(warehouse, {"top", "top2", "nested", "nested2", "newdir", "subtxt"})


def test_start_position_end_skips_only_what_existed_at_the_first_start(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    logs = _logs(tmp_path)
    old = logs / "old.log"
    append(old, lines("old", 0, 100) + "partial old line without newline")
    source = [SourceConfig(path=logs, start_position="end")]
    with Running(warehouse, source):
        append(old, "\n" + lines("new", 0, 10))
        append(logs / "created.log", lines("created", 0, 10))  # appears while running: from 0
        wait_until(has_all(warehouse, ids("new", 0, 10) | ids("created", 0, 10)), "new lines")
    append(old, lines("new", 10, 20))  # known now: start_position no longer applies
    with Running(warehouse, source):
        wait_until(has_all(warehouse, ids("new", 10, 20)), "lines written while stopped")
    assert_exactly_once(warehouse, ids("new", 0, 20) | ids("created", 0, 10))
    assert (
        _count(warehouse, "select count(*) from lines where text = 'partial old line without newline'") == 1
    )

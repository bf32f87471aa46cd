"""Rotation, truncation and deletion, modelled on the log shippers' own test cases.

Every scenario writes lines with unique ids and ends with each id exactly once in the warehouse.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

from tests.tail.helpers import (
    Gate,
    Running,
    append,
    assert_exactly_once,
    has_all,
    ids,
    lines,
    settings,
    sources_of,
    wait_until,
)
from warehouse.store import Warehouse


def _logs(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    return logs


def test_rotation_by_rename_while_the_writer_keeps_its_descriptor(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    logs = _logs(tmp_path)
    log = logs / "app.log"
    with Running(warehouse, logs):
        with log.open("a") as writer:
            writer.write(lines("a", 0, 300))
            writer.flush()
            wait_until(has_all(warehouse, ids("a", 0, 300)), "the first lines")
            os.rename(log, logs / "app.log.1")
            writer.write(lines("a", 300, 400))  # still written to the renamed file
        append(log, lines("a", 400, 600))  # the writer reopens its log: a new file
        wait_until(has_all(warehouse, ids("a", 0, 600)), "lines of both files")
    assert_exactly_once(warehouse, ids("a", 0, 600))
    assert sources_of(warehouse, ids("a", 300, 400)) == {str(logs / "app.log.1")}


def test_rotation_by_create_of_new_files_and_reuse_of_a_deleted_name(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    logs = _logs(tmp_path)
    with Running(warehouse, logs):
        # Exchange style: each rotation is a new file name
        for n in range(5):
            append(logs / f"RECV2024010{n}-1.LOG", lines(f"h{n}-", 0, 50))
        wait_until(has_all(warehouse, set().union(*(ids(f"h{n}-", 0, 50) for n in range(5)))), "hourly files")
        # delete and create under the same name (the inode number may well be reused)
        log = logs / "same.log"
        append(log, lines("s", 0, 100))
        wait_until(has_all(warehouse, ids("s", 0, 100)), "the first generation")
        log.unlink()
        append(log, lines("s", 100, 150))
        wait_until(has_all(warehouse, ids("s", 100, 150)), "the file created under the same name")
    expected = ids("s", 0, 150).union(*(ids(f"h{n}-", 0, 50) for n in range(5)))
    assert_exactly_once(warehouse, expected)


def _copytruncate(log: Path) -> None:
    shutil.copyfile(log, log.with_name(log.name + ".1"))
    with log.open("r+") as f:
        f.truncate(0)


def test_copytruncate_reads_the_unread_end_from_the_copy_once(tmp_path: Path, warehouse: Warehouse) -> None:
    logs = _logs(tmp_path)
    log = logs / "app.log"
    with Running(warehouse, logs):
        append(log, lines("c", 0, 200))
        wait_until(has_all(warehouse, ids("c", 0, 200)), "lines before rotation")
        append(log, lines("c", 200, 500))
        _copytruncate(log)
        append(log, lines("c", 500, 600))
        wait_until(has_all(warehouse, ids("c", 0, 600)), "lines of the copy and of the truncated file")
    assert_exactly_once(warehouse, ids("c", 0, 600))


def test_copytruncate_while_stopped_resumes_inside_the_copy(tmp_path: Path, warehouse: Warehouse) -> None:
    logs = _logs(tmp_path)
    log = logs / "app.log"
    append(log, lines("d", 0, 200))
    with Running(warehouse, logs):
        wait_until(has_all(warehouse, ids("d", 0, 200)), "first lines")
    append(log, lines("d", 200, 300))  # not read before the rotation
    _copytruncate(log)
    append(log, lines("d", 300, 350))
    with Running(warehouse, logs):
        wait_until(has_all(warehouse, ids("d", 0, 350)), "lines after restart")
    assert_exactly_once(warehouse, ids("d", 0, 350))
    assert sources_of(warehouse, ids("d", 200, 300)) == {str(logs / "app.log.1")}
    assert sources_of(warehouse, ids("d", 300, 350)) == {str(log)}


def test_truncate_to_zero_then_same_header_is_a_new_generation(tmp_path: Path, warehouse: Warehouse) -> None:
    logs = _logs(tmp_path)
    log = logs / "app.log"
    header = "# app.log written by app v1 (header line repeated by every generation)\n"
    with Running(warehouse, logs):
        append(log, header + lines("t", 0, 100))
        wait_until(has_all(warehouse, ids("t", 0, 100)), "first generation")
        log.write_text(header + lines("t", 100, 130))  # truncate and write at once
        wait_until(has_all(warehouse, ids("t", 100, 130)), "second generation")
        with log.open("r+") as f:
            f.truncate(0)
        append(log, header + lines("t", 130, 400))  # regrows far past the old size
        wait_until(has_all(warehouse, ids("t", 130, 400)), "third generation")
    assert_exactly_once(warehouse, ids("t", 0, 400))
    from warehouse.query import run

    headers = run(warehouse, "select count(*) n from lines where text like '# app.log%'").to_pylist()[0]["n"]
    assert headers == 3


def test_truncated_and_regrown_between_two_looks_is_a_new_generation(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    logs = _logs(tmp_path)
    log = logs / "app.log"
    gate = Gate()
    with Running(warehouse, logs, hook=gate, inline_hook=True):
        append(log, lines("q", 0, 100))
        wait_until(has_all(warehouse, ids("q", 0, 100)), "first generation")
        gate.hold()
        append(log, lines("q", 100, 101))
        gate.wait_held()  # the tailer is inside its after-commit hook: it cannot look now
        with log.open("r+") as f:
            f.truncate(0)
        append(log, lines("q", 101, 400))  # regrown far past the old position before the next look
        gate.release()
        wait_until(has_all(warehouse, ids("q", 101, 400)), "the regrown file")
    assert_exactly_once(warehouse, ids("q", 0, 400))


def test_copytruncate_between_two_looks(tmp_path: Path, warehouse: Warehouse) -> None:
    logs = _logs(tmp_path)
    log = logs / "app.log"
    gate = Gate()
    with Running(warehouse, logs, hook=gate, inline_hook=True):
        append(log, lines("k", 0, 100))
        wait_until(has_all(warehouse, ids("k", 0, 100)), "first lines")
        gate.hold()
        append(log, lines("k", 100, 101))
        gate.wait_held()
        append(log, lines("k", 101, 300))  # unread when the copy is taken
        _copytruncate(log)
        append(log, lines("k", 300, 700))  # regrows past the old position
        gate.release()
        wait_until(has_all(warehouse, ids("k", 0, 700)), "copy and regrown file")
    assert_exactly_once(warehouse, ids("k", 0, 700))
    assert sources_of(warehouse, ids("k", 101, 300)) == {str(logs / "app.log.1")}


def test_truncated_and_regrown_while_stopped_is_read_from_zero(tmp_path: Path, warehouse: Warehouse) -> None:
    logs = _logs(tmp_path)
    log = logs / "app.log"
    header = "[app] banner line that every generation repeats\n" * 25  # 1.2 KiB: longer than the fingerprint
    append(log, header + lines("r", 0, 50))
    with Running(warehouse, logs):
        wait_until(has_all(warehouse, ids("r", 0, 50)), "first generation")
    log.write_text(header + lines("r", 50, 400))  # bigger than before, same first 1 KiB
    with Running(warehouse, logs):
        wait_until(has_all(warehouse, ids("r", 50, 400)), "the regrown file")
    assert_exactly_once(warehouse, ids("r", 0, 400))


def test_file_deleted_while_being_read_is_read_to_its_end(tmp_path: Path, warehouse: Warehouse) -> None:
    logs = _logs(tmp_path)
    log = logs / "app.log"
    slow = settings(chunk_bytes=16 * 1024, batch_bytes=32 * 1024)
    with log.open("a") as writer:
        writer.write(lines("x", 0, 20_000))  # ~1 MB: dozens of batches
        writer.flush()
        with Running(warehouse, logs, slow) as tail:
            wait_until(lambda: tail.tailer.book.totals.commits >= 1, "the first commit")
            log.unlink()
            writer.write(lines("x", 20_000, 20_100))  # the writer still holds it
            writer.flush()
            wait_until(has_all(warehouse, ids("x", 0, 20_100)), "every line of the deleted file", timeout=40)
            commits_when_deleted = tail.tailer.book.totals.commits
    assert commits_when_deleted > 3
    assert_exactly_once(warehouse, ids("x", 0, 20_100))


def test_gz_of_a_rotated_file_is_recognised_and_not_read_again(tmp_path: Path, warehouse: Warehouse) -> None:
    logs = _logs(tmp_path)
    log = logs / "app.log"
    with Running(warehouse, logs) as tail:
        append(log, lines("g", 0, 500))
        wait_until(has_all(warehouse, ids("g", 0, 500)), "the log")
        rotated = logs / "app.log.1"
        os.rename(log, rotated)
        with rotated.open("rb") as src, gzip.open(logs / "app.log.1.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        rotated.unlink()
        append(log, lines("g", 500, 550))
        gz = logs / "app.log.1.gz"
        wait_until(lambda: (tail.state_of(gz) or {}).get("state") == "done", "the archive to be examined")
        wait_until(has_all(warehouse, ids("g", 500, 550)), "the new log")
        assert (tail.state_of(gz) or {}).get("note") == "archive read"
    assert_exactly_once(warehouse, ids("g", 0, 550))


def test_gz_holding_unread_lines_is_resumed_inside_and_an_unknown_gz_read_whole(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    logs = _logs(tmp_path)
    log = logs / "app.log"
    append(log, lines("z", 0, 300))
    with Running(warehouse, logs):
        wait_until(has_all(warehouse, ids("z", 0, 300)), "the log")
    append(log, lines("z", 300, 400))  # written after the last commit, before rotation
    with log.open("rb") as src, gzip.open(logs / "app.log.1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    log.unlink()
    with gzip.open(tmp_path / "old.log.gz", "wt") as f:  # an archive never seen as plain text
        f.write(lines("o", 0, 1000))
    shutil.move(tmp_path / "old.log.gz", logs / "old.log.gz")
    with Running(warehouse, logs):
        wait_until(has_all(warehouse, ids("z", 0, 400) | ids("o", 0, 1000)), "both archives")
    assert_exactly_once(warehouse, ids("z", 0, 400) | ids("o", 0, 1000))
    assert sources_of(warehouse, ids("z", 300, 400)) == {str(logs / "app.log.1.gz")}


def test_rotations_named_outside_the_globs_are_read_only_for_lines_not_yet_read(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    from ingest.settings import SourceConfig

    logs = _logs(tmp_path)
    log = logs / "app.log"
    source = [SourceConfig(path=logs, include=["*.log"])]
    append(log, lines("v", 0, 100))
    append(logs / "notes.txt", "id=notes not a log\n")
    with Running(warehouse, source):
        wait_until(has_all(warehouse, ids("v", 0, 100)), "the log")
    append(log, lines("v", 100, 150))  # written just before a rotation that happens while stopped
    os.rename(log, logs / "app.log.1")
    with (logs / "app.log.1").open("rb") as src, gzip.open(logs / "app.log.1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    (logs / "app.log.1").unlink()
    append(log, lines("v", 150, 160))
    with gzip.open(logs / "app.log.7.gz", "wt") as f:  # named like a rotation, holds something else
        f.write("id=stranger\n")
    with Running(warehouse, source) as tail:
        wait_until(has_all(warehouse, ids("v", 100, 160)), "lines of the archive and the new log")
        wait_until(
            lambda: (tail.state_of(logs / "app.log.7.gz") or {}).get("state") == "done", "the stranger"
        )
        assert (tail.state_of(logs / "app.log.7.gz") or {})[
            "note"
        ] == "outside the globs and not a copy of a file read"
    assert_exactly_once(warehouse, ids("v", 0, 160))
    assert sources_of(warehouse, ids("v", 100, 150)) == {str(logs / "app.log.1.gz")}


def test_copy_taken_while_the_original_is_read_on_is_not_read_again(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    """copytruncate's race: the tailer reads the original past the point where the copy was
    taken, then the original is truncated; the copy holds nothing new and must add nothing."""
    logs = _logs(tmp_path)
    log = logs / "app.log"
    gate = Gate()
    with Running(warehouse, logs, hook=gate, inline_hook=True) as tail:
        append(log, lines("r", 0, 100))
        wait_until(has_all(warehouse, ids("r", 0, 100)), "first lines")
        gate.hold()
        append(log, lines("r", 100, 101))
        gate.wait_held()
        append(log, lines("r", 101, 120))  # in the copy, not read yet
        shutil.copyfile(log, logs / "app.log.1")
        append(log, lines("r", 120, 170))  # after the copy: only the original has them
        gate.hold_again()
        wait_until(has_all(warehouse, ids("r", 101, 170)), "the original read past the copy point")
        gate.wait_held()
        with log.open("r+") as f:
            f.truncate(0)
        append(log, lines("r", 170, 200))
        gate.release()
        wait_until(has_all(warehouse, ids("r", 170, 200)), "the new generation")
        wait_until(
            lambda: (tail.state_of(logs / "app.log.1") or {}).get("state") == "done", "the copy judged"
        )
    assert_exactly_once(warehouse, ids("r", 0, 200))

"""The same Windows events in two exports land once (warehouse.copies).

Built from sample_logs/windows/wec01_forwarded_events.xml (an Event Viewer "Save as XML" export,
one event per line): two exports of overlapping ranges of its events, as an admin gets who
exports the same log twice, a week apart.
"""

from __future__ import annotations

from pathlib import Path

from ingest.backfill import IngestStats, ingest_paths
from parsers.base import ParseOptions
from tests.cli.test_cli_errors import knownfix
from tests.conftest import SAMPLE_LOGS
from warehouse.query import run
from warehouse.store import Warehouse

SOURCE = SAMPLE_LOGS / "windows" / "wec01_forwarded_events.xml"
OPTIONS = ParseOptions(timezone="Asia/Dubai")
KEY = "computer, channel, record_id, time_created"


def _export(path: Path, first: int, last: int, times: int = 1) -> Path:
    """An export holding the source's events ``first``..``last`` (``times`` over)."""
    lines = SOURCE.read_text(encoding="utf-8").splitlines(keepends=True)
    head = [x for x in lines if not x.startswith("<Event ") and x.strip() != "</Events>"]
    events = [x for x in lines if x.startswith("<Event ")][first:last]
    path.write_text("".join(head + events * times) + "</Events>\n", encoding="utf-8")
    return path


def _rows(wh: Warehouse) -> dict[str, int]:
    got = run(wh, f"select count(*) n, count(distinct ({KEY})) k from events").to_pylist()[0]
    return {"rows": got["n"], "keys": got["k"]}


def _reconciles(stats: IngestStats) -> bool:
    return stats.records_read == stats.row_count + stats.rejects + stats.duplicates


def _alone(tmp_path: Path, name: str, first: int, last: int) -> int:
    """Rows an export gives in a warehouse of its own."""
    stats = ingest_paths(
        Warehouse(tmp_path / f"alone-{name}"), [_export(tmp_path / name, first, last)], options=OPTIONS
    )
    return stats.row_count


def test_a_later_export_adds_only_the_events_it_has_new(tmp_path: Path) -> None:
    week1, week2 = tmp_path / "exports" / "week1.xml", tmp_path / "exports" / "week2.xml"
    week1.parent.mkdir()
    shared = _alone(tmp_path, "shared.xml", 5, 10)
    whole = _alone(tmp_path, "whole.xml", 0, 15)
    wh = Warehouse(tmp_path / "wh")
    first = ingest_paths(wh, [_export(week1, 0, 10)], options=OPTIONS)
    second = ingest_paths(wh, [_export(week2, 5, 15)], options=OPTIONS)
    assert shared > 0 and first.duplicates == 0
    assert second.duplicates == shared
    assert _reconciles(first) and _reconciles(second)
    assert _rows(wh) == {"rows": whole, "keys": whole}
    files = run(wh, "select sum(duplicates) d, sum(records_read - rows - rejects) r from files").to_pylist()
    assert files == [{"d": shared, "r": shared}]
    again = ingest_paths(wh, [week1, week2], options=OPTIONS)  # the same files: nothing new at all
    assert (again.records_read, again.duplicates) == (0, 0)


def test_overlapping_exports_read_in_one_run_land_once(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    shared = _alone(tmp_path, "shared.xml", 3, 8)
    whole = _alone(tmp_path, "whole.xml", 0, 15)
    _export(folder / "a.xml", 0, 8)
    _export(folder / "b.xml", 3, 15)
    wh = Warehouse(tmp_path / "wh")
    stats = ingest_paths(wh, [folder], options=OPTIONS)  # both in the same commit
    assert stats.commits == 1 and stats.duplicates == shared and _reconciles(stats)
    assert _rows(wh) == {"rows": whole, "keys": whole}


def test_a_record_repeated_inside_one_file_is_kept(tmp_path: Path) -> None:
    once = _alone(tmp_path, "once.xml", 0, 15)
    wh = Warehouse(tmp_path / "wh")
    stats = ingest_paths(wh, [_export(tmp_path / "twice.xml", 0, 15, times=2)], options=OPTIONS)
    assert stats.duplicates == 0 and _reconciles(stats)
    assert _rows(wh) == {"rows": 2 * once, "keys": once}


def test_exports_without_record_ids_are_never_matched(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh")
    ingest_paths(wh, [SOURCE], options=OPTIONS)
    csv = ingest_paths(wh, [SAMPLE_LOGS / "windows" / "wec01_forwarded_events.csv"], options=OPTIONS)
    assert csv.row_count > 0 and csv.duplicates == 0


def test_ingest_says_how_many_events_were_already_there(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    shared = _alone(tmp_path, "shared.xml", 5, 10)
    _export(folder / "week1.xml", 0, 10)
    proc = knownfix("ingest", str(folder), "-w", str(tmp_path / "wh"))
    assert proc.returncode == 0 and "already in the warehouse" not in proc.stderr
    _export(folder / "week2.xml", 5, 15)
    proc = knownfix("ingest", str(folder), "-w", str(tmp_path / "wh"))
    assert proc.returncode == 0, proc.stderr
    assert f"{shared} records were already in the warehouse from another file" in proc.stderr

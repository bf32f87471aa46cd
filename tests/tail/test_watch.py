"""Observers: inotify for local folders, polling for network shares, chosen from /proc/mounts."""

from __future__ import annotations

import os
from pathlib import Path

from ingest.settings import SourceConfig
from ingest.watch import choose_observer, filesystem_type
from tests.tail.helpers import Running, append, assert_exactly_once, has_all, ids, lines, settings, wait_until
from warehouse.store import Warehouse

MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
//fileserver/ExchangeLogs /mnt/ex01\\040logs cifs rw,vers=3.0,username=svc 0 0
nas:/export/logs /mnt/nfs nfs4 rw,relatime 0 0
/dev/sdb1 /mnt/nfs/local ext4 rw 0 0
tmpfs /tmp tmpfs rw 0 0
"""


def test_filesystem_type_takes_the_longest_mount_point() -> None:
    assert filesystem_type(Path("/mnt/ex01 logs/TransportRoles/Logs"), MOUNTS) == "cifs"
    assert filesystem_type(Path("/mnt/nfs/server1"), MOUNTS) == "nfs4"
    assert filesystem_type(Path("/mnt/nfs/local/x"), MOUNTS) == "ext4"
    assert filesystem_type(Path("/mnt/nfsx"), MOUNTS) == "ext4"  # a prefix of a name is not a mount
    assert filesystem_type(Path("/tmp/a"), MOUNTS) == "tmpfs"


def test_auto_polls_network_shares_and_watches_local_disks() -> None:
    assert choose_observer(Path("/mnt/ex01 logs/x"), "auto", MOUNTS) == "polling"
    assert choose_observer(Path("/mnt/nfs/x"), "auto", MOUNTS) == "polling"
    assert choose_observer(Path("/var/log"), "auto", MOUNTS) == "native"
    assert choose_observer(Path("/mnt/ex01 logs/x"), "native", MOUNTS) == "native"
    assert choose_observer(Path("/var/log"), "polling", MOUNTS) == "polling"


def _no_rescan() -> dict[str, float]:
    # the periodic re-scan would find the lines too; push it out so only the observer can
    return {"rescan_interval": 3600.0}


def test_polling_observer_forced_follows_growth_rotation_and_new_files(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    logs = tmp_path / "share"
    logs.mkdir()
    source = SourceConfig(path=logs, observer="polling", poll_interval=0.1)
    with Running(warehouse, [source], settings(**_no_rescan())) as tail:
        assert tail.tailer.book.sources == [{"path": str(logs), "observer": "polling", "poll_interval": 0.1}]
        log = logs / "app.log"
        append(log, lines("p", 0, 100))
        wait_until(has_all(warehouse, ids("p", 0, 100)), "lines seen by polling")
        append(log, lines("p", 100, 200))
        wait_until(has_all(warehouse, ids("p", 100, 200)), "growth seen by polling")
        os.rename(log, logs / "app.log.1")
        append(log, lines("p", 200, 250))
        (logs / "sub").mkdir()
        append(logs / "sub" / "other.log", lines("q", 0, 20))
        wait_until(has_all(warehouse, ids("p", 200, 250) | ids("q", 0, 20)), "rotation and new folder")
    assert_exactly_once(warehouse, ids("p", 0, 250) | ids("q", 0, 20))


def test_native_observer_delivers_without_rescans(tmp_path: Path, warehouse: Warehouse) -> None:
    logs = tmp_path / "local"
    logs.mkdir()
    with Running(warehouse, [SourceConfig(path=logs, observer="native")], settings(**_no_rescan())) as tail:
        assert tail.tailer.book.sources[0]["observer"] == "native"
        append(logs / "app.log", lines("n", 0, 50))
        wait_until(has_all(warehouse, ids("n", 0, 50)), "lines seen by inotify")
    assert_exactly_once(warehouse, ids("n", 0, 50))


def test_a_share_that_goes_away_and_comes_back_is_watched_again(tmp_path: Path, warehouse: Warehouse) -> None:
    share = tmp_path / "share"
    share.mkdir()
    source = SourceConfig(path=share, observer="polling", poll_interval=0.1)
    with Running(warehouse, [source], settings(**_no_rescan())) as tail:
        append(share / "app.log", lines("u", 0, 10))
        wait_until(has_all(warehouse, ids("u", 0, 10)), "lines before the outage")
        os.rename(share, tmp_path / "unmounted")  # the polling watch ends when its folder vanishes
        assert tail.tailer.watcher is not None
        emitters = tail.tailer.watcher.emitters()
        wait_until(lambda: not any(e.is_alive() for e in emitters), "the watch to end")
        append(tmp_path / "unmounted" / "app.log", lines("u", 10, 20))
        os.rename(tmp_path / "unmounted", share)  # mounted again
        wait_until(has_all(warehouse, ids("u", 10, 20)), "lines written during the outage")
        append(share / "app.log", lines("u", 20, 30))
        wait_until(has_all(warehouse, ids("u", 20, 30)), "lines after the outage, seen by the new watch")
    assert_exactly_once(warehouse, ids("u", 0, 30))

"""Finding files and hearing about their changes: globs, recursion, observers.

Events are only hints: a handler records which paths changed and wakes the tailer, which then
looks at the files itself. A lost event therefore delays a line (until the next event or the
periodic re-scan), it never loses one. Local folders use inotify (watchdog's native observer);
SMB/CIFS and NFS mounts deliver no change events to the client, so they are polled — chosen from
the file system type in ``/proc/mounts`` unless the source says otherwise.
"""

from __future__ import annotations

import fnmatch
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from ingest.settings import SourceConfig

#: File systems that do not deliver inotify events for changes made by other machines.
NETWORK_FILESYSTEMS = frozenset(
    {
        "cifs",
        "smb3",
        "smbfs",
        "nfs",
        "nfs4",
        "ncpfs",
        "afs",
        "9p",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "davfs",
        "fuse.sshfs",
        "fuse.davfs2",
        "fuse.rclone",
        "fuse.s3fs",
        "fuse.glusterfs",
        "fuse.cephfs",
        "vboxsf",
    }
)


def _unescape_mount(field_: str) -> str:
    """``/proc/mounts`` writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field_ = field_.replace(code, char)
    return field_


def filesystem_type(path: Path, mounts: str | None = None) -> str | None:
    """Type of the file system holding ``path`` (longest matching mount point), if known."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    target = os.path.realpath(path)
    best, best_len = None, -1
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = _unescape_mount(parts[1])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > best_len:
            best, best_len = parts[2], len(point)
    return best


def choose_observer(path: Path, mode: str, mounts: str | None = None) -> str:
    """``native`` or ``polling`` for a source, resolving ``auto`` from the file system type."""
    if mode != "auto":
        return mode
    fstype = filesystem_type(path, mounts)
    return "polling" if fstype in NETWORK_FILESYSTEMS else "native"


@dataclass
class Source:
    """A configured source with its globs resolved against its root."""

    config: SourceConfig
    root: Path = field(init=False)
    single_file: bool = field(init=False)

    def __post_init__(self) -> None:
        self.root = Path(os.path.abspath(self.config.path))
        self.single_file = self.root.is_file()

    @property
    def watch_dir(self) -> Path:
        return self.root.parent if self.single_file else self.root

    def contains(self, path: Path) -> bool:
        if self.single_file:
            return path == self.root
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return False
        parts = rel.parts
        if not parts or any(p.startswith(".") for p in parts):
            return False
        return self.config.recursive or len(parts) == 1

    def matches(self, path: Path) -> bool:
        """Whether ``path`` is a file this source reads (location and globs)."""
        if not self.contains(path):
            return False
        if self.single_file:
            return True
        rel = path.relative_to(self.root).as_posix()
        name = path.name

        def hit(pattern: str) -> bool:
            return fnmatch.fnmatch(rel if "/" in pattern else name, pattern)

        return any(hit(p) for p in self.config.include) and not any(hit(p) for p in self.config.exclude)

    def rotation_candidate(self, path: Path) -> bool:
        """Inside this source and not excluded, though the include globs leave it out."""
        if not self.contains(path) or self.single_file:
            return False
        rel = path.relative_to(self.root).as_posix()
        return not any(fnmatch.fnmatch(rel if "/" in p else path.name, p) for p in self.config.exclude)

    def scan(self, *, everything: bool = False) -> Iterator[Path]:
        """Files of this source (with ``everything``: also those the globs leave out)."""
        if self.single_file:
            if self.root.is_file():
                yield self.root
            return
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = (
                sorted(d for d in dirnames if not d.startswith(".")) if self.config.recursive else []
            )
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if (everything and not name.startswith(".")) or self.matches(path):
                    yield path


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = [event.src_path, getattr(event, "dest_path", "")]
        self.watcher.notify([os.fsdecode(p) for p in paths if p], directory=event.is_directory)


#: The events that can mean new bytes, a new file or a rotation (opens and reads are ignored).
EVENT_FILTER: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirMovedEvent,
]


@dataclass
class ObserverInfo:
    path: str
    observer: str
    poll_interval: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "observer": self.observer, "poll_interval": self.poll_interval}


class Watcher:
    """Observers for every source; collects changed paths and wakes the tailer."""

    def __init__(self, sources: list[Source], wake: threading.Event) -> None:
        self.sources = sources
        self.wake = wake
        self._lock = threading.Lock()
        self._paths: set[str] = set()
        self._dirs: set[str] = set()
        self._observers: list[BaseObserver] = []
        self.info: list[ObserverInfo] = []

    def notify(self, paths: list[str], *, directory: bool = False) -> None:
        with self._lock:
            (self._dirs if directory else self._paths).update(paths)
        self.wake.set()

    def drain(self) -> tuple[set[str], set[str]]:
        """Paths of changed files and of new or moved folders since the last call."""
        with self._lock:
            paths, dirs = self._paths, self._dirs
            self._paths, self._dirs = set(), set()
        return paths, dirs

    def start(self) -> list[ObserverInfo]:
        for source in self.sources:
            kind = choose_observer(source.watch_dir, source.config.observer)
            try:
                observer = self._launch(source, kind)
            except OSError:  # e.g. the inotify watch limit: polling still works
                kind = "polling"
                observer = self._launch(source, kind)
            self._observers.append(observer)
            interval = source.config.poll_interval if kind == "polling" else None
            self.info.append(ObserverInfo(str(source.root), kind, interval))
        return self.info

    def _launch(self, source: Source, kind: str) -> BaseObserver:
        observer = self._observer(kind, source.config.poll_interval)
        recursive = source.config.recursive and not source.single_file
        observer.schedule(
            _Handler(self), str(source.watch_dir), recursive=recursive, event_filter=EVENT_FILTER
        )
        observer.start()
        return observer

    def emitters(self) -> list[threading.Thread]:
        """The threads that watch (one per scheduled folder), for health checks."""
        return [e for o in self._observers for e in o.emitters]

    def heal(self) -> list[Source]:
        """Restart observers whose watch ended (a share unmounted, its folder moved) once their
        folder is back; returns their sources, which the caller re-scans (events were missed)."""
        healed = []
        for i, (source, observer) in enumerate(zip(self.sources, self._observers, strict=True)):
            emitters = list(observer.emitters)
            if emitters and all(e.is_alive() for e in emitters) and observer.is_alive():
                continue
            if not source.watch_dir.is_dir():
                continue
            observer.stop()
            try:
                self._observers[i] = self._launch(source, self.info[i].observer)
            except OSError:
                continue  # tried again at the next look
            healed.append(source)
        return healed

    @staticmethod
    def _observer(kind: str, interval: float) -> BaseObserver:
        return PollingObserver(timeout=interval) if kind == "polling" else Observer()

    def stop(self) -> None:
        for observer in self._observers:
            observer.stop()
        for observer in self._observers:
            observer.join(timeout=5)
        self._observers.clear()

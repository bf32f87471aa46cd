"""Single-writer lock: one process appends to a warehouse, any number read it.

Readers never take it (Delta snapshots isolate them); a second writer gets a clear error instead
of interleaving commits that would break the ``_version`` watermark of incremental rule runs.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from warehouse.errors import WarehouseLockedError


class WriterLock:
    def __init__(self, root: Path) -> None:
        self.path = root / ".writer.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise WarehouseLockedError(
                f"warehouse {self.path.parent} is being written by process {holder}; "
                "stop that process or choose another warehouse with --warehouse"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

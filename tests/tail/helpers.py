"""Shared tools of the tail tests: a tailer in a thread, id counting, waiting on conditions."""

from __future__ import annotations

import collections
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ingest.settings import SourceConfig, TailConfig
from ingest.tail import Tailer
from warehouse.commit import CommitSummary
from warehouse.query import run
from warehouse.store import Warehouse

ID = re.compile(r"\bid=(\S+)")

#: Short waits so each scenario takes about a second, not the production defaults.
FAST: dict[str, Any] = {
    "commit_interval": 0.05,
    "partial_line_timeout": 0.6,
    "settle_time": 0.3,
    "close_inactive": 1.0,
    "rescan_interval": 3.0,
    "status_interval": 0.2,
    "chunk_bytes": 64 * 1024,
}


def settings(**overrides: Any) -> TailConfig:
    return TailConfig(**{**FAST, **overrides})


def wait_until(cond: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    """Poll ``cond`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def id_counts(wh: Warehouse, table: str = "lines", column: str = "text") -> collections.Counter[str]:
    if table not in Warehouse(wh.root).table_names():
        return collections.Counter()
    texts = run(wh, f"select {column} from {table}").column(0).to_pylist()
    return collections.Counter(m.group(1) for t in texts if t for m in [ID.search(t)] if m)


def sources_of(wh: Warehouse, ids: Iterable[str]) -> set[str]:
    wanted = set(ids)
    rows = run(wh, "select text, source_file from lines").to_pylist()
    return {r["source_file"] for r in rows if (m := ID.search(r["text"] or "")) and m.group(1) in wanted}


def lines(prefix: str, start: int, stop: int) -> str:
    return "".join(f"{time.time():.6f} id={prefix}{i:06} payload of line {i}\n" for i in range(start, stop))


def ids(prefix: str, start: int, stop: int) -> set[str]:
    return {f"{prefix}{i:06}" for i in range(start, stop)}


def append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(text)


class Running:
    """A tailer running in a thread; ``stop()`` asks for a clean stop and waits for it."""

    def __init__(
        self,
        wh: Warehouse,
        sources: list[SourceConfig] | Path,
        config: TailConfig | None = None,
        hook: Callable[[CommitSummary], None] | None = None,
        *,
        inline_hook: bool = False,
    ) -> None:
        if isinstance(sources, Path):
            sources = [SourceConfig(path=sources)]
        self.wh = wh
        self.tailer = Tailer(
            wh, sources, config or settings(), after_commit=hook, background_hook=not inline_hook
        )
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.tailer.run()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def __enter__(self) -> Running:
        self.thread.start()
        wait_until(lambda: self.tailer.ready.is_set() or not self.thread.is_alive(), "the tailer to start")
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if not self.thread.is_alive() and self.error is None:
            return
        self.tailer.request_stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the tailer did not stop within 30 s"
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def files(self) -> list[dict[str, Any]]:
        follower = self.tailer.follower
        return follower.describe() if follower is not None else []

    def state_of(self, path: Path) -> dict[str, Any] | None:
        return next((f for f in self.files() if f["path"] == str(path)), None)


def row_count(wh: Warehouse, table: str = "lines") -> int:
    if table not in Warehouse(wh.root).table_names():
        return 0
    return int(run(wh, f"select count(*) from {table}").column(0)[0].as_py())


def has_all(wh: Warehouse, expected: set[str]) -> Callable[[], bool]:
    """A condition: every expected id is in ``lines`` (the cheap count is checked first)."""
    return lambda: row_count(wh) >= len(expected) and expected <= set(id_counts(wh))


def assert_exactly_once(wh: Warehouse, expected: set[str]) -> None:
    counts = id_counts(wh)
    missing = expected - set(counts)
    doubled = {k: v for k, v in counts.items() if v > 1}
    extra = set(counts) - expected
    assert not missing, f"{len(missing)} ids missing, e.g. {sorted(missing)[:5]}"
    assert not doubled, f"{len(doubled)} ids more than once, e.g. {sorted(doubled.items())[:5]}"
    assert not extra, f"unexpected ids {sorted(extra)[:5]}"


class _Hold:
    def __init__(self) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()


class Gate:
    """An after-commit hook that can hold the tailer still, so a test can change files between
    two of its looks (run inline, the hook runs in the tailer's thread right after a commit)."""

    def __init__(self) -> None:
        self._armed: _Hold | None = None
        self._last: _Hold | None = None

    def __call__(self, summary: CommitSummary) -> None:
        hold, self._armed = self._armed, None
        if hold is not None:
            hold.entered.set()
            hold.released.wait(30)

    def hold(self) -> None:
        """Hold the tailer at its next commit."""
        self._armed = self._last = _Hold()

    def wait_held(self) -> None:
        assert self._last is not None and self._last.entered.wait(20), "the tailer did not commit"

    def release(self) -> None:
        if self._last is not None:
            self._last.released.set()

    def hold_again(self) -> None:
        """Let the held tailer go on, and hold it at its following commit."""
        current = self._last
        self.hold()
        if current is not None:
            current.released.set()

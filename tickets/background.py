"""Dispatch passes on a timer in a thread, for long-running processes (``knownfix tail``).

Ingestion must never wait for a slow tracker, so tickets go out from their own thread. Every
``every`` seconds (or sooner after ``wake()``, e.g. right after a commit that wrote hits) one pass
runs; errors are handed to ``on_error`` and the loop goes on — the next pass resumes from the
dispatcher's state, so nothing is lost by a failed pass.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from tickets.dispatch import Dispatcher, DispatchReport


class BackgroundDispatch:
    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        every: float = 10.0,
        on_report: Callable[[DispatchReport], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.every = every
        self.on_report = on_report
        self.on_error = on_error
        self.passes = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="knownfix-tickets", daemon=True)

    def start(self) -> BackgroundDispatch:
        self._thread.start()
        return self

    def wake(self) -> None:
        """Run a pass now (new hits were committed)."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the pass in flight, then stop."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.dispatcher.run_once()
                if self.on_report is not None:
                    self.on_report(report)
            except Exception as exc:  # a pass that fails must not end the loop
                if self.on_error is not None:
                    self.on_error(exc)
            self.passes += 1
            self._wake.wait(self.every)
            self._wake.clear()

"""Fixtures of the ticket tests: a manual clock, a hits writer, a dispatcher over a memory tracker."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from tests.tickets.hitdata import Hits
from tickets.base import Sink
from tickets.clock import ManualClock
from tickets.config import TicketsConfig
from tickets.dispatch import Dispatcher
from warehouse.store import Warehouse


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def hits(warehouse: Warehouse, clock: ManualClock) -> Hits:
    return Hits(warehouse, clock)


MakeDispatcher = Callable[..., Dispatcher]


@pytest.fixture
def make_dispatcher(warehouse: Warehouse, clock: ManualClock) -> MakeDispatcher:
    def make(*sinks: Sink, **config: object) -> Dispatcher:
        cfg = TicketsConfig.model_validate(config)
        return Dispatcher(warehouse, cfg, list(sinks), clock=clock, rng=random.Random(7))

    return make


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say loudly when the real-Redmine test was skipped: a skip must not pass for a pass."""
    from tests.tickets.test_redmine import SKIP_PREFIX

    for report in terminalreporter.stats.get("skipped", []):
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if SKIP_PREFIX in reason:
            terminalreporter.write_sep("!", reason.split("Skipped: ")[-1], red=True, bold=True)
            return

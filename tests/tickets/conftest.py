"""Fixtures of the ticket tests: a manual clock, a hits writer, a dispatcher over a memory tracker."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from tests.tickets.hitdata import Hits
from tests.tickets.redmine_server import EARLY, SKIP_PREFIX, Launch
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


def pytest_collection_finish(session: pytest.Session) -> None:
    """Boot Redmine while the other tests run, if a Redmine test is selected."""
    if any(item.nodeid.startswith("tests/tickets/test_redmine.py") for item in session.items):
        EARLY["redmine"] = Launch()


def pytest_sessionfinish(session: pytest.Session) -> None:
    launch = EARLY.pop("redmine", None)
    if launch is not None:
        launch.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say loudly when the real-Redmine test was skipped: a skip must not pass for a pass."""
    for report in terminalreporter.stats.get("skipped", []):
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if SKIP_PREFIX in reason:
            terminalreporter.write_sep("!", reason.split("Skipped: ")[-1], red=True, bold=True)
            return

"""Faults: the tracker down then back, slow answers, the dispatcher killed between sending and
recording, and random failure schedules. At the end each dedup key has exactly one ticket and
every hit is reflected in it."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer

from tests.tickets.conftest import MakeDispatcher
from tests.tickets.fake_trackers import FakeGitHub
from tests.tickets.hitdata import Hits, key
from tests.tickets.test_dispatch import reflected_seq
from tickets.base import parse_marker
from tickets.clock import ManualClock
from tickets.config import TicketsConfig
from tickets.dispatch import Dispatcher
from tickets.fakes import FailingSink
from tickets.github import GitHubConfig, GitHubSink
from tickets.model import ticket_token
from tickets.store import StateStore
from warehouse.store import Warehouse

GROUPS = ["connector=Outbound to Office 365", "connector=Internet", "connector=Partner contoso.eu"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _github(url: str, monkeypatch: pytest.MonkeyPatch, timeout: float = 10.0) -> GitHubSink:
    monkeypatch.setenv("KF_GH_TOKEN", "ghp_test_token_0123456789")
    cfg = {"repo": "contoso/ops", "token": {"env": "KF_GH_TOKEN"}, "api_url": url, "timeout": timeout}
    return GitHubSink(GitHubConfig.model_validate(cfg))


def _seqs(fake: FakeGitHub, group: str) -> tuple[int, int]:
    """(tickets for the key, highest hit seq reflected in them)."""
    token = ticket_token(key(group))
    issues = [i for i in fake.issues.values() if token in {lb["name"] for lb in i["labels"]}]
    texts = [t for i in issues for t in [i["body"], *fake.comments[i["number"]]]]
    seqs = [parse_marker(t, token)[1] or 0 for t in texts]
    return len(issues), max(seqs, default=0)


def test_tracker_down_then_back(
    hits: Hits, clock: ManualClock, make_dispatcher: MakeDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()
    sink = _github(f"http://127.0.0.1:{port}", monkeypatch)
    d = make_dispatcher(sink)
    hits.add(GROUPS[0])
    hits.add(GROUPS[1])
    report = d.run_once()
    assert "github" in report.down and "ConnectError" in report.down["github"]
    assert [o.action for o in report.outcomes] == ["failed"], (
        "the first key failed; the sink was skipped after it"
    )
    clock.advance(120)
    hits.add(GROUPS[0], count=5)  # the failure goes on while the tracker is down
    server = HTTPServer(host="127.0.0.1", port=port)
    server.start()
    try:
        fake = FakeGitHub(server)
        clock.advance(3600)
        report = d.run_once()
        assert sorted(o.action for o in report.outcomes) == ["opened", "opened"]
        assert _seqs(fake, GROUPS[0]) == (1, 2) and _seqs(fake, GROUPS[1]) == (1, 1)
        assert "**Occurrences**: 6" in fake.issues[1]["body"]
        assert fake.violations == []
    finally:
        server.stop()
        sink.close()


def test_slow_answers(hits: Hits, make_dispatcher: MakeDispatcher, monkeypatch: pytest.MonkeyPatch) -> None:
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    try:
        fake = FakeGitHub(server)
        sink = _github(fake.url, monkeypatch, timeout=0.5)
        fake.inject("GET", "/issues$", status=None, after=True, delay=0.2)  # slow but in time
        fake.inject("POST", "/issues$", status=None, after=True, delay=1.5)  # created, answer too late
        hits.add(GROUPS[0])
        report = make_dispatcher(sink).run_once()
        assert [o.action for o in report.outcomes] == ["opened"]
        assert _seqs(fake, GROUPS[0]) == (1, 1), "the timed-out create was found, not repeated"
        assert len(fake.calls("POST", r"/repos/contoso/ops/issues")) == 1
        assert fake.violations == []
        sink.close()
    finally:
        server.stop()


def test_killed_between_send_and_record(
    httpserver: HTTPServer, hits: Hits, warehouse: Warehouse, tmp_path: Path
) -> None:
    fake = FakeGitHub(httpserver)
    config = tmp_path / "knownfix.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "sinks": [
                    {
                        "type": "github",
                        "repo": fake.repo,
                        "token": {"env": "KF_GH_TOKEN"},
                        "api_url": fake.url,
                    }
                ]
            }
        )
    )
    env = {**os.environ, "KF_GH_TOKEN": fake.token}
    cmd = [
        sys.executable,
        "-m",
        "knownfix.cli",
        "tickets",
        "dispatch",
        "-w",
        str(warehouse.root),
        "-c",
        str(config),
    ]
    hits.add(GROUPS[0])
    hits.add(GROUPS[1])
    started = threading.Event()
    child: dict[str, int] = {}

    def kill_child() -> None:  # the ticket exists, the answer never arrives
        assert started.wait(30)
        os.kill(child["pid"], signal.SIGKILL)

    fake.on_create = kill_child
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child["pid"] = proc.pid
    started.set()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    assert len(fake.issues) == 1
    store = StateStore(warehouse.state_dir / "tickets.sqlite")
    recorded = store.delivery("github", key(GROUPS[0]))
    assert recorded is None or recorded.remote_id is None, "killed before recording the ticket"
    store.close()

    fake.on_create = None
    hits.add(GROUPS[0], count=2)
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "adopted" in again.stderr and "opened" in again.stderr, again.stderr
    assert _seqs(fake, GROUPS[0]) == (1, 2) and _seqs(fake, GROUPS[1]) == (1, 1)
    assert "2 new occurrences" in fake.comments[1][0]
    assert fake.violations == []


# -- random schedules of hits, failures and lost answers --------------------------------------------
OPS = st.one_of(
    st.tuples(st.just("hit"), st.integers(0, 2), st.integers(1, 50)),
    st.tuples(st.just("pass"), st.integers(0, 4), st.booleans(), st.booleans()),
    st.tuples(st.just("wait"), st.sampled_from([1, 60, 301, 4000])),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, min_size=1, max_size=14))
def test_random_failures_never_lose_or_double_a_ticket(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as tmp:
        clock = ManualClock()
        wh = Warehouse(Path(tmp) / "wh")
        hits = Hits(wh, clock)
        sink = FailingSink(fail_every=0)
        cfg = TicketsConfig.model_validate({"update_interval": "5m", "retry": {"attempts": 2}})
        d = Dispatcher(wh, cfg, [sink], clock=clock, rng=random.Random(3))
        for op in ops:
            if op[0] == "hit":
                hits.add(GROUPS[op[1]], count=op[2])
            elif op[0] == "pass":
                sink.fail_every, sink.transient, sink.lose_reply = op[1], not op[2] or op[1] == 0, op[3]
                sink.n = 0
                d.run_once()
            else:
                clock.advance(op[1])
        sink.fail_every = 0
        d.retry()
        for _ in range(3):  # the tracker healthy again: pending updates go out, one per interval
            clock.advance(7200)
            d.run_once()
        for group in GROUPS:
            token = ticket_token(key(group))
            n_hits = hits.counts.get(key(group), 0)
            tickets = sink.by_token(token)
            assert len(tickets) == (1 if n_hits else 0), f"{group}: {len(tickets)} tickets"
            assert reflected_seq(sink, token) == n_hits, f"{group}: hits not all reflected"

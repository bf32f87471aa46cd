"""The ticket dispatcher against a real Redmine (Debian's redmine + SQLite + thin on 127.0.0.1).

The packages are installed once per machine (root, apt; ~40 s the first time) and thin is started
(~5 s) in the background as soon as these tests are collected (``redmine_server.Launch``). Where that is impossible the tests are skipped with the reason, and the
terminal summary says in capitals that the Redmine integration test did not run.
"""

from __future__ import annotations

import html
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.tickets.hitdata import HOSTILE, LINES, Hits, key
from tests.tickets.redmine_server import API_KEY, EARLY, SKIP_PREFIX, CannotRun, Launch
from tickets.clock import ManualClock
from tickets.config import TicketsConfig
from tickets.dispatch import Dispatcher
from tickets.model import ticket_token
from tickets.redmine import RedmineConfig, RedmineSink
from warehouse.store import Warehouse


@dataclass
class Redmine:
    url: str
    api_key: str
    http: httpx.Client

    def issues(self, project: str) -> list[dict[str, Any]]:
        r = self.http.get("/issues.json", params={"project_id": project, "status_id": "*", "limit": 100})
        r.raise_for_status()
        return list(r.json()["issues"])

    def issue(self, issue_id: str) -> dict[str, Any]:
        r = self.http.get(f"/issues/{issue_id}.json", params={"include": "journals"})
        r.raise_for_status()
        return dict(r.json()["issue"])

    def notes(self, issue_id: str) -> list[str]:
        return [j["notes"] for j in self.issue(issue_id)["journals"] if j.get("notes")]

    def close_as_a_person(self, issue_id: str) -> None:
        r = self.http.put(
            f"/issues/{issue_id}.json", json={"issue": {"status_id": 5, "notes": "fixed the ACL"}}
        )
        r.raise_for_status()

    def new_project(self) -> str:
        ident = "kf-" + uuid.uuid4().hex[:10]
        r = self.http.post(
            "/projects.json", json={"project": {"name": ident, "identifier": ident, "is_public": True}}
        )
        r.raise_for_status()
        return ident


@pytest.fixture(scope="session")
def redmine() -> Iterator[Redmine]:
    launch = EARLY.get("redmine") or Launch()  # started at collection time when possible
    EARLY["redmine"] = launch
    try:
        url = launch.wait()
    except CannotRun as exc:
        pytest.skip(f"{SKIP_PREFIX}: {exc}")
    client = httpx.Client(base_url=url, headers={"X-Redmine-API-Key": API_KEY}, timeout=30)
    try:
        yield Redmine(url, API_KEY, client)
    finally:
        client.close()
        launch.stop()


@pytest.fixture
def rig(redmine: Redmine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Hits, Any]]:
    """A fresh project, a warehouse, and ``dispatch(**options)`` running one pass over them."""
    project = redmine.new_project()
    monkeypatch.setenv("KF_TEST_REDMINE_KEY", redmine.api_key)
    clock = ManualClock()
    wh = Warehouse(tmp_path / "wh")
    hits = Hits(wh, clock)
    sinks: list[RedmineSink] = []

    def dispatch(on_closed: str = "reopen", **options: Any) -> Any:
        cfg = RedmineConfig.model_validate(
            {
                "url": redmine.url,
                "api_key": {"env": "KF_TEST_REDMINE_KEY"},
                "project": project,
                "tracker_id": 1,
                "on_closed": on_closed,
            }
        )
        sink = RedmineSink(cfg)
        sinks.append(sink)
        d = Dispatcher(wh, TicketsConfig.model_validate(options), [sink], clock=clock, rng=random.Random(1))
        return d.run_once()

    yield project, hits, (dispatch, clock, wh)
    for s in sinks:
        s.close()


def test_create_update_rate_limit_reopen_and_auto_resolve(redmine: Redmine, rig: Any) -> None:
    project, hits, (dispatch, clock, _) = rig
    opts = {"update_interval": "5m", "auto_resolve_after": "2h"}

    # create
    hits.add(count=3, lines=[LINES[0], HOSTILE])
    report = dispatch(**opts)
    assert [o.action for o in report.outcomes] == ["opened"], report
    [issue] = redmine.issues(project)
    issue_id = str(issue["id"])
    assert issue["subject"].startswith("[HIGH] Hybrid send connector: TLS negotiation failed")
    assert f"knownfix-key: {ticket_token(key())} seq: 1" in issue["description"]
    assert "Restart-Service MSExchangeTransport" in issue["description"]

    # update on recurrence, held by the rate limit until 5 minutes after the last update
    clock.advance(60)
    hits.add(count=2, lines=[LINES[1]])
    assert [o.action for o in dispatch(**opts).outcomes] == ["held"]
    assert redmine.notes(issue_id) == []
    clock.advance(60)
    hits.add(
        count=4,
        lines=[
            "2016-07-19T12:20:01.000Z,Outbound to Office 365,08D3AFC581A92DE0,8,,,*,,TLS negotiation failed with error UnknownCredentials"
        ],
    )
    assert [o.action for o in dispatch(**opts).outcomes] == ["held"]
    clock.advance(181)
    assert [o.action for o in dispatch(**opts).outcomes] == ["updated"]
    [note] = redmine.notes(issue_id)
    assert "*6 new occurrences*" in note and "9 in total" in note
    assert "08D3AFC581A92DE0" in note and LINES[1] in note
    assert len(redmine.issues(project)) == 1

    # reopen after a person closed it
    redmine.close_as_a_person(issue_id)
    assert redmine.issue(issue_id)["status"]["is_closed"] is True
    clock.advance(600)
    hits.add()
    assert [o.action for o in dispatch(**opts).outcomes] == ["reopened"]
    reopened = redmine.issue(issue_id)
    assert reopened["status"]["name"] == "New" and reopened["status"]["is_closed"] is False
    assert "The failure is back" in redmine.notes(issue_id)[-1]

    # auto-resolve after two quiet hours, once
    clock.advance(7199)
    assert dispatch(**opts).outcomes == []
    clock.advance(2)
    assert [o.action for o in dispatch(**opts).outcomes] == ["resolved"]
    resolved = redmine.issue(issue_id)
    assert resolved["status"]["name"] == "Closed"
    assert "Resolved automatically" in redmine.notes(issue_id)[-1]
    assert dispatch(**opts).outcomes == []
    assert len(redmine.issues(project)) == 1


def test_hostile_log_text_is_shown_as_text_by_redmine(redmine: Redmine, rig: Any) -> None:
    project, hits, (dispatch, _, _) = rig
    hits.add(group="connector=<b>Outbound</b> *x* #1 commit:abc", lines=[HOSTILE])
    assert [o.action for o in dispatch().outcomes] == ["opened"]
    [issue] = redmine.issues(project)
    page = httpx.get(f"{redmine.url}/issues/{issue['id']}", timeout=30).text  # Redmine's own rendering
    wiki = page[page.index('<div class="wiki">') :]
    wiki = wiki[: wiki.index("</div>")]
    assert "<script>" not in wiki and "<b>" not in wiki
    assert "<strong>bold</strong>" not in wiki and "<strong>x</strong>" not in wiki
    assert 'class="issue' not in wiki, "#1 must not become a link to issue 1"
    # the whole hostile line, </pre> included, is inside one <pre> block, shown literally
    shown = html.unescape(wiki).replace("\u200b", "")
    assert HOSTILE in shown
    assert "connector=<b>Outbound</b> *x* #1 commit:abc" in shown
    assert f"knownfix-key: {ticket_token(key('connector=<b>Outbound</b> *x* #1 commit:abc'))} seq: 1" in shown


def test_lost_state_finds_the_ticket_instead_of_creating_another(redmine: Redmine, rig: Any) -> None:
    project, hits, (dispatch, clock, wh) = rig
    hits.add()
    assert [o.action for o in dispatch().outcomes] == ["opened"]
    for f in wh.state_dir.glob("tickets.sqlite*"):  # as if the dispatcher died before recording
        f.unlink()
    clock.advance(600)
    hits.add(count=2)
    report = dispatch()
    assert [o.action for o in report.outcomes] == ["adopted"]
    [issue] = redmine.issues(project)
    [note] = redmine.notes(str(issue["id"]))
    assert "2 new occurrences" in note, "the adopted ticket reflects seq 1; the update carries seq 2"

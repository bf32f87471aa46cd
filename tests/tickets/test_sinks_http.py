"""Jira (v2, v3), ServiceNow, GitHub and webhook sinks against local servers that check the
request shapes of the public APIs and answer as those APIs do, including 429 and 5xx."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from tests.tickets.conftest import MakeDispatcher
from tests.tickets.fake_trackers import FakeGitHub, FakeJira, FakeServiceNow, FakeTracker, FakeWebhook
from tests.tickets.hitdata import HOSTILE, Hits, key
from tickets import adf
from tickets.base import Sink
from tickets.clock import ManualClock
from tickets.github import GitHubConfig, GitHubSink
from tickets.jira import JiraConfig, JiraSink
from tickets.model import ticket_token
from tickets.servicenow import ServiceNowConfig, ServiceNowSink
from tickets.webhook import WebhookConfig, WebhookSink

TOKEN = ticket_token(key())


@dataclass
class Rig:
    fake: Any
    sink: Sink
    ids: Callable[[], list[str]]
    texts: Callable[[str], list[str]]  # the ticket's body, then its comments, as text
    close_as_a_person: Callable[[str], None]
    closed: Callable[[str], bool]


def github_rig(server: HTTPServer, monkeypatch: pytest.MonkeyPatch, **opts: Any) -> Rig:
    fake = FakeGitHub(server)
    monkeypatch.setenv("KF_GH_TOKEN", fake.token)
    cfg = GitHubConfig.model_validate(
        {"repo": fake.repo, "token": {"env": "KF_GH_TOKEN"}, "api_url": fake.url, **opts}
    )
    return Rig(
        fake,
        GitHubSink(cfg),
        lambda: [str(n) for n in fake.issues],
        lambda i: [fake.issues[int(i)]["body"], *fake.comments[int(i)]],
        lambda i: fake.close_as_a_person(int(i)),
        lambda i: fake.issues[int(i)]["state"] == "closed",
    )


def jira_rig(version: int) -> Callable[..., Rig]:
    def make(server: HTTPServer, monkeypatch: pytest.MonkeyPatch, **opts: Any) -> Rig:
        fake = FakeJira(server)
        monkeypatch.setenv("KF_JIRA_TOKEN", fake.token)
        cfg = JiraConfig.model_validate(
            {
                "url": fake.url,
                "user": fake.user,
                "token": {"env": "KF_JIRA_TOKEN"},
                "project": "OPS",
                "api_version": version,
                **opts,
            }
        )

        def text(v: Any) -> str:
            return v if isinstance(v, str) else adf.to_text(v)

        return Rig(
            fake,
            JiraSink(cfg),
            lambda: list(fake.issues),
            lambda k: [text(fake.issues[k]["fields"]["description"]), *map(text, fake.comments[k])],
            fake.close_as_a_person,
            fake.is_closed,
        )

    return make


def servicenow_rig(server: HTTPServer, monkeypatch: pytest.MonkeyPatch, **opts: Any) -> Rig:
    fake = FakeServiceNow(server)
    monkeypatch.setenv("KF_SN_PASSWORD", fake.password)
    cfg = ServiceNowConfig.model_validate(
        {"instance_url": fake.url, "user": fake.user, "password": {"env": "KF_SN_PASSWORD"}, **opts}
    )
    return Rig(
        fake,
        ServiceNowSink(cfg),
        lambda: list(fake.records),
        lambda i: [fake.records[i]["description"], *(t for _, t in fake.journal[i])],
        lambda i: fake.close_as_a_person(i, "6"),
        lambda i: fake.records[i]["state"] in ("6", "7"),
    )


RIGS = {"github": github_rig, "jira-v2": jira_rig(2), "jira-v3": jira_rig(3), "servicenow": servicenow_rig}


@pytest.fixture(params=sorted(RIGS))
def rig(
    request: pytest.FixtureRequest, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Rig]:
    r = RIGS[request.param](httpserver, monkeypatch)
    yield r
    r.sink.close()
    assert r.fake.violations == [], "requests that break the documented API"


def actions(report: Any) -> list[str]:
    return [o.action for o in report.outcomes]


def test_lifecycle_open_update_reopen_resolve(
    rig: Rig, hits: Hits, clock: ManualClock, make_dispatcher: MakeDispatcher
) -> None:
    d = make_dispatcher(rig.sink, update_interval="5m", auto_resolve_after="1h")
    hits.add(count=3, lines=[HOSTILE])
    assert actions(d.run_once()) == ["opened"]
    [tid] = rig.ids()
    body = rig.texts(tid)[0]
    assert "knownfix-key: " + TOKEN + " seq: 1" in body
    assert "Restart-Service MSExchangeTransport" in body

    clock.advance(30)
    hits.add(count=2)
    assert actions(d.run_once()) == ["held"]
    clock.advance(300)
    assert actions(d.run_once()) == ["updated"]
    assert "2 new occurrences" in rig.texts(tid)[-1] and "5 in total" in rig.texts(tid)[-1]

    rig.close_as_a_person(tid)
    clock.advance(60)
    hits.add()
    assert actions(d.run_once()) == ["held"], "reopening is an update too: at most one per interval"
    clock.advance(300)
    assert actions(d.run_once()) == ["reopened"]
    assert not rig.closed(tid) and "The failure is back" in rig.texts(tid)[-1]

    clock.advance(3601)
    assert actions(d.run_once()) == ["resolved"]
    assert rig.closed(tid) and "Resolved automatically" in rig.texts(tid)[-1]
    assert rig.ids() == [tid]


def test_a_lost_answer_is_found_by_the_token_not_created_twice(
    rig: Rig, hits: Hits, clock: ManualClock, make_dispatcher: MakeDispatcher
) -> None:
    create = {"github": "/issues$", "jira": "/issue$", "servicenow": "/incident$"}
    path = next(v for k, v in create.items() if type(rig.sink).__name__.lower().startswith(k[:4]))
    rig.fake.inject("POST", path, status=502, after=True)  # created, then the proxy lost the answer
    hits.add()
    report = make_dispatcher(rig.sink).run_once()
    assert actions(report) == ["opened"]
    assert len(rig.ids()) == 1, "the retry looked the token up before creating again"
    assert clock.sleeps and 0.5 <= clock.sleeps[0] <= 1.0, "one backoff (base 1 s, jitter) before the retry"


def test_429_waits_for_retry_after_then_succeeds(
    rig: Rig, hits: Hits, clock: ManualClock, make_dispatcher: MakeDispatcher
) -> None:
    rig.fake.inject(
        "POST", ".", status=429, headers={"Retry-After": "7"}, body={"message": "Too Many Requests"}
    )
    hits.add()
    assert actions(make_dispatcher(rig.sink).run_once()) == ["opened"]
    assert len(clock.sleeps) == 1 and 7 <= clock.sleeps[0] <= 7.7
    assert len(rig.ids()) == 1


def test_5xx_backs_off_exponentially_then_pauses_the_sink(
    rig: Rig, hits: Hits, clock: ManualClock, make_dispatcher: MakeDispatcher
) -> None:
    rig.fake.inject("GET", ".", status=503, times=4)  # every lookup fails for one whole pass
    hits.add()
    d = make_dispatcher(rig.sink, retry={"attempts": 4, "base": 1, "cap": 60})
    report = d.run_once()
    assert actions(report) == ["failed"] and rig.sink.name in report.down
    assert "503" in report.down[rig.sink.name]
    for n, s in enumerate(clock.sleeps):
        assert 2**n / 2 <= s <= 2**n, f"try {n + 1}: backoff {s} outside [{2**n / 2}, {2**n}]"
    assert rig.ids() == []
    again = d.run_once()
    assert rig.sink.name in again.down and "paused" in again.down[rig.sink.name]
    clock.advance(3600)
    assert actions(d.run_once()) == ["opened"]
    assert len(rig.ids()) == 1


def test_bad_credentials_dead_letter_without_the_secret(
    rig: Rig, hits: Hits, make_dispatcher: MakeDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = getattr(rig.fake, "token", None) or rig.fake.password
    setattr(rig.fake, "token" if hasattr(rig.fake, "token") else "password", "rotated-elsewhere")
    hits.add()
    d = make_dispatcher(rig.sink)
    report = d.run_once()
    assert actions(report) == ["dead"]
    reason = report.outcomes[0].detail
    assert "401" in reason and secret not in reason
    if isinstance(rig.fake, FakeGitHub):  # it echoes the header it got: the client must redact it
        assert "Bad credentials (Bearer ***)" in reason
    assert actions(d.run_once()) == [], "dead-lettered: not retried by every pass"
    setattr(rig.fake, "token" if hasattr(rig.fake, "token") else "password", secret)
    assert d.retry() == 1
    assert actions(d.run_once()) == ["opened"]


def test_servicenow_closed_incident_is_read_only_so_a_new_one_links_it(
    httpserver: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
    hits: Hits,
    clock: ManualClock,
    make_dispatcher: MakeDispatcher,
) -> None:
    r = servicenow_rig(httpserver, monkeypatch)
    d = make_dispatcher(r.sink)
    hits.add()
    d.run_once()
    [first] = r.ids()
    r.fake.close_as_a_person(first, "7")
    clock.advance(600)
    hits.add()
    assert actions(d.run_once()) == ["relinked"]
    second = next(i for i in r.ids() if i != first)
    assert r.fake.records[second]["correlation_id"] == TOKEN
    assert first in r.fake.records[second]["description"]
    create = r.fake.calls("POST", "/api/now/table/incident")[0]
    assert (
        create.body["urgency"] == "1"
        and create.body["impact"] == "2"
        and create.body["correlation_display"] == "knownfix"
    )
    assert r.fake.violations == []


def test_github_rate_limit_403_waits_until_reset(
    httpserver: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
    hits: Hits,
    clock: ManualClock,
    make_dispatcher: MakeDispatcher,
) -> None:
    import time

    r = github_rig(httpserver, monkeypatch)
    reset = int(time.time()) + 20
    r.fake.inject(
        "POST",
        "/issues$",
        status=403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
        body={"message": "API rate limit exceeded for user ID 1."},
    )
    hits.add()
    assert actions(make_dispatcher(r.sink).run_once()) == ["opened"]
    assert 15 <= clock.sleeps[0] <= 23
    issue = next(iter(r.fake.issues.values()))
    assert {lb["name"] for lb in issue["labels"]} == {"knownfix", TOKEN}
    assert r.fake.violations == []


def test_jira_v3_sends_atlassian_documents(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, hits: Hits, make_dispatcher: MakeDispatcher
) -> None:
    r = jira_rig(3)(httpserver, monkeypatch)
    hits.add(lines=[HOSTILE])
    make_dispatcher(r.sink).run_once()
    [create] = r.fake.calls("POST", "/rest/api/3/issue")
    doc = create.body["fields"]["description"]
    blocks = [b["type"] for b in doc["content"]]
    assert {"heading", "bulletList", "orderedList", "codeBlock", "paragraph"} <= set(blocks)
    code = [b["content"][0]["text"] for b in doc["content"] if b["type"] == "codeBlock" and b.get("content")]
    assert HOSTILE in code, "log lines are literal text in a codeBlock"
    assert create.body["fields"]["labels"] == ["knownfix", TOKEN]
    assert r.fake.violations == []


def test_webhook_signs_each_event_and_keeps_the_idempotency_key_across_retries(
    httpserver: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
    hits: Hits,
    clock: ManualClock,
    make_dispatcher: MakeDispatcher,
) -> None:
    fake = FakeWebhook(httpserver)
    monkeypatch.setenv("KF_HOOK_SECRET", fake.secret or "")
    sink = WebhookSink(
        WebhookConfig.model_validate(
            {"url": fake.url + "/hooks/knownfix", "secret": {"env": "KF_HOOK_SECRET"}}
        ),
        clock,
    )
    fake.inject("POST", "/hooks/knownfix", status=500)
    d = make_dispatcher(sink, update_interval="5m", auto_resolve_after="1h")
    hits.add(count=2)
    assert actions(d.run_once()) == ["opened"]
    assert fake.idempotency_keys == [f"{TOKEN}:open:1"], (
        "the failed try was answered before the receiver saw it"
    )
    assert len(fake.calls("POST", "/hooks/knownfix")) == 2
    retried = fake.calls("POST", "/hooks/knownfix")
    assert retried[0].headers["Idempotency-Key"] == retried[1].headers["Idempotency-Key"]
    clock.advance(400)
    hits.add(count=3)
    assert actions(d.run_once()) == ["updated"]
    clock.advance(3601)
    assert actions(d.run_once()) == ["resolved"]
    assert [e["event"] for e in fake.events] == ["open", "update", "resolve"]
    first = fake.events[0]
    assert first["dedup_key"] == key() and first["count"] == 2 and first["severity"] == "high"
    assert first["fix"]["causes"][0]["commands"][1] == "Restart-Service MSExchangeTransport"
    assert fake.events[1]["new_count"] == 3 and fake.events[1]["count"] == 5
    assert json.dumps(first)  # plain JSON all the way down
    assert fake.violations == []


def test_webhook_without_a_valid_signature_is_refused(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, hits: Hits, make_dispatcher: MakeDispatcher
) -> None:
    fake: FakeTracker = FakeWebhook(httpserver)
    monkeypatch.setenv("KF_HOOK_SECRET", "not-the-receivers-secret")
    sink = WebhookSink(
        WebhookConfig.model_validate(
            {"url": fake.url + "/hooks/knownfix", "secret": {"env": "KF_HOOK_SECRET"}}
        )
    )
    hits.add()
    report = make_dispatcher(sink).run_once()
    assert actions(report) == ["dead"] and "401" in report.outcomes[0].detail
    assert "not-the-receivers-secret" not in report.outcomes[0].detail
    fake.violations.clear()

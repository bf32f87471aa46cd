"""Dispatcher semantics over an in-memory tracker: one ticket per key, updates, reopen, resolve."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable

import pytest

from tests.tickets.conftest import MakeDispatcher
from tests.tickets.hitdata import HOSTILE, LINES, LOG, QUERY, RULE_TITLE, Hits, key
from tickets.background import BackgroundDispatch
from tickets.base import parse_marker
from tickets.clock import ManualClock
from tickets.errors import DispatchLockedError
from tickets.fakes import MemorySink
from tickets.model import ticket_token
from tickets.store import DispatchLock, StateStore
from warehouse.store import Warehouse


def reflected_seq(sink: MemorySink, token: str) -> int:
    """The highest hit seq any text of the key's tickets carries: every hit up to it is reported."""
    seqs = []
    for t in sink.by_token(token):
        for text in [t.body, *(body for _, body in t.comments)]:
            for m in re.finditer(r"knownfix-key: (kf-[0-9a-f]{16}) seq: (\d+)", text):
                if m.group(1) == token:
                    seqs.append(int(m.group(2)))
    return max(seqs, default=0)


def test_first_hit_opens_one_ticket_with_the_documented_fix(
    hits: Hits, make_dispatcher: MakeDispatcher
) -> None:
    sink = MemorySink()
    hits.add(count=3, lines=[LINES[0], LINES[1]])
    report = make_dispatcher(sink).run_once()
    assert report.absorbed == 1
    assert [o.action for o in report.outcomes] == ["opened"]
    [ticket] = sink.tickets.values()
    assert ticket.title == f"[HIGH] {RULE_TITLE} (connector=Outbound to Office 365)"
    body = ticket.body
    for needle in (
        "**Severity**: high",
        "**Occurrences**: 3",
        "**Where**: connector=Outbound to Office 365",
        "Grant NETWORK SERVICE Read on the certificate's private key",
        "Restart-Service MSExchangeTransport",
        "<https://learn.microsoft.com/exchange/mail-flow/connectors/send-connectors>",
        LINES[0],
        LINES[1],
        f"`{LOG}` at byte 4096, line 10",
        f'knownfix query "{QUERY}"',
        f"knownfix-key: {ticket_token(key())} seq: 1",
    ):
        assert needle in body, needle
    assert "First seen" in body and "2026-01-05 08:59:30 UTC" in body


def test_recurrence_is_one_comment_per_interval_with_the_new_count_and_samples(
    hits: Hits, clock: ManualClock, make_dispatcher: MakeDispatcher
) -> None:
    sink = MemorySink()
    d = make_dispatcher(sink, update_interval="5m")
    hits.add(count=2)
    d.run_once()
    clock.advance(60)
    hits.add(count=4, lines=["line of the second burst"])
    clock.advance(60)
    hits.add(count=5, lines=["line of the third burst"])
    report = d.run_once()
    assert [o.action for o in report.outcomes] == ["held"], "an update within 5 minutes must wait"
    [ticket] = sink.tickets.values()
    assert ticket.comments == []
    clock.advance(181)
    report = d.run_once()
    assert [o.action for o in report.outcomes] == ["updated"]
    [(kind, comment)] = ticket.comments
    assert kind == "update"
    assert "**9 new occurrences**" in comment, comment
    assert "11 in total" in comment
    assert "line of the second burst" in comment and "line of the third burst" in comment
    assert "2026-01-05 09:00:30 UTC and 2026-01-05 09:02:00 UTC" in comment
    assert d.run_once().outcomes == [], "nothing new: nothing sent"
    assert len(sink.tickets) == 1 and reflected_seq(sink, ticket.token) == 3


def test_the_same_hit_committed_twice_counts_once(hits: Hits, make_dispatcher: MakeDispatcher) -> None:
    sink = MemorySink()
    row = hits.row(count=7)
    hits.append([row])
    hits.append([row])  # the rule engine re-ran the same rows after a crash
    assert make_dispatcher(sink).run_once().absorbed == 1
    assert "**Occurrences**: 7" in next(iter(sink.tickets.values())).body


def test_keys_get_their_own_tickets_in_every_sink(hits: Hits, make_dispatcher: MakeDispatcher) -> None:
    a, b = MemorySink("a"), MemorySink("b")
    hits.append([hits.row("connector=Outbound to Office 365"), hits.row("connector=Internet")])
    hits.add("connector=Internet")
    make_dispatcher(a, b).run_once()
    for sink in (a, b):
        assert sorted(t.title.split("(")[-1] for t in sink.tickets.values()) == [
            "connector=Internet)",
            "connector=Outbound to Office 365)",
        ]
        assert "**Occurrences**: 2" in sink.by_token(ticket_token(key("connector=Internet")))[0].body


def test_closed_by_a_person_then_back_reopens(
    hits: Hits, clock: ManualClock, make_dispatcher: MakeDispatcher
) -> None:
    sink = MemorySink(on_closed="reopen")
    d = make_dispatcher(sink)
    hits.add()
    d.run_once()
    sink.close_by_person("1")
    clock.advance(3600)
    hits.add(count=2)
    report = d.run_once()
    assert [o.action for o in report.outcomes] == ["reopened"]
    assert len(sink.tickets) == 1 and not sink.tickets["1"].closed
    kind, body = sink.tickets["1"].comments[-1]
    assert kind == "reopen" and "The failure is back" in body and "2 new occurrences" in body


def test_closed_by_a_person_then_back_opens_a_new_ticket_linking_the_old(
    hits: Hits, clock: ManualClock, make_dispatcher: MakeDispatcher
) -> None:
    sink = MemorySink(on_closed="new")
    d = make_dispatcher(sink)
    hits.add()
    d.run_once()
    sink.close_by_person("1")
    clock.advance(3600)
    hits.add(count=2)
    report = d.run_once()
    assert [o.action for o in report.outcomes] == ["relinked"]
    assert sorted(sink.tickets) == ["1", "2"]
    assert sink.tickets["1"].closed and sink.tickets["1"].comments == []
    new = sink.tickets["2"]
    assert "**Follows**: memory://1" in new.body.replace("\\", "")
    assert "**Occurrences**: 3" in new.body
    clock.advance(600)
    hits.add()
    assert [o.action for o in d.run_once().outcomes] == ["updated"]
    assert len(sink.tickets["2"].comments) == 1


def test_auto_resolve_is_off_by_default(
    hits: Hits, clock: ManualClock, make_dispatcher: MakeDispatcher
) -> None:
    sink = MemorySink()
    d = make_dispatcher(sink)
    hits.add()
    d.run_once()
    clock.advance(30 * 86400)
    assert d.run_once().outcomes == []
    assert not sink.tickets["1"].closed


def test_auto_resolve_after_a_quiet_period_then_reopen(
    hits: Hits, clock: ManualClock, make_dispatcher: MakeDispatcher
) -> None:
    sink = MemorySink(on_closed="new")  # resolved by knownfix, not by a person: reopened anyway
    d = make_dispatcher(sink, auto_resolve_after="1h")
    hits.add()
    d.run_once()
    clock.advance(3599)
    assert d.run_once().outcomes == []
    clock.advance(2)
    assert [o.action for o in d.run_once().outcomes] == ["resolved"]
    assert sink.tickets["1"].closed
    kind, note = sink.tickets["1"].comments[-1]
    assert kind == "resolve" and "no occurrence for 1 hour" in note
    clock.advance(7200)
    assert d.run_once().outcomes == [], "resolved once, not every pass"
    hits.add()
    assert [o.action for o in d.run_once().outcomes] == ["reopened"]
    assert len(sink.tickets) == 1 and not sink.tickets["1"].closed


def test_dry_run_sends_and_keeps_nothing(
    hits: Hits, warehouse: Warehouse, make_dispatcher: MakeDispatcher
) -> None:
    sink = MemorySink()
    d = make_dispatcher(sink)
    hits.add()
    report = d.run_once(dry_run=True)
    assert [(s, a.split()[0]) for s, a, _ in report.previews] == [("memory", "create")]
    assert "TLS negotiation failed" in report.previews[0][2].body
    assert sink.calls == [] and sink.tickets == {}
    store = StateStore(warehouse.state_dir / "tickets.sqlite")
    assert store.watermark() == -1, "dry run must not advance the watermark"
    store.close()
    assert [o.action for o in d.run_once().outcomes] == ["opened"]


def test_hostile_log_text_stays_inside_the_code_block(hits: Hits, make_dispatcher: MakeDispatcher) -> None:
    sink = MemorySink()
    hits.add(lines=[HOSTILE])
    make_dispatcher(sink).run_once()
    body = sink.tickets["1"].body
    assert HOSTILE in body  # verbatim inside a fence longer than any backtick run in it
    assert "````text\n" + HOSTILE + "\n````" in body
    assert parse_marker(body, ticket_token(key())) == (True, 1)


def test_one_dispatcher_at_a_time(hits: Hits, warehouse: Warehouse, make_dispatcher: MakeDispatcher) -> None:
    hits.add()
    with (
        DispatchLock(warehouse.state_dir),
        pytest.raises(DispatchLockedError, match=f"process {os.getpid()}"),
    ):
        make_dispatcher(MemorySink()).run_once()


def test_background_dispatch_sends_new_hits_without_blocking_the_caller(
    hits: Hits, make_dispatcher: MakeDispatcher
) -> None:
    sink = MemorySink()
    errors: list[Exception] = []
    bg = BackgroundDispatch(
        make_dispatcher(sink, update_interval=0), every=60, on_error=errors.append
    ).start()
    try:
        hits.add(count=2)
        bg.wake()
        wait_for(lambda: len(sink.tickets) == 1)
        hits.add(count=3)
        bg.wake()
        wait_for(lambda: len(sink.tickets["1"].comments) == 1)
    finally:
        bg.stop()
    assert errors == [] and "3 new occurrences" in sink.tickets["1"].comments[0][1]


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)

"""The dispatcher: hits → incidents → one ticket per dedup key and sink, updated, never doubled.

One pass (``run_once``):

1. *absorb*: read ``hits`` rows above the watermark (by ``_version``) into incidents;
2. for each sink and each key with something to do:
   - no ticket yet → look the token up in the tracker first (a ticket created just before a
     crash is adopted, not created again), else create;
   - unsent hits → at most one update per ``update_interval``: if a person closed the ticket,
     reopen it or open a new one that links it (``on_closed``); else comment with the new
     count, time range and samples;
   - quiet for ``auto_resolve_after`` → resolve with a note.

Transient failures are retried with exponential backoff and jitter (honouring ``Retry-After``);
if a sink stays down it is paused with backoff and the next pass resumes where this one stopped.
Permanent failures dead-letter the key for that sink until ``knownfix tickets retry``.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pyarrow.compute as pc

from tickets.base import Kind, Message, RemoteTicket, Sink
from tickets.clock import Backoff, Clock, SystemClock
from tickets.config import TicketsConfig
from tickets.errors import PermanentError, TransientError
from tickets.model import Incident, News
from tickets.store import Delivery, DispatchLock, StateStore
from tickets.templates import Renderer
from warehouse.hits import HITS_TABLE
from warehouse.store import VERSION_COLUMN, Warehouse

T = TypeVar("T")
STATE_FILE = "tickets.sqlite"
MAX_PAUSE = 3600.0


class _SinkDown(Exception):
    """A sink kept failing transiently within this pass."""

    def __init__(self, error: TransientError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class Outcome:
    sink: str
    dedup_key: str
    action: str  # opened adopted updated reopened relinked resolved held failed dead
    ticket: str | None = None
    detail: str = ""


@dataclass
class DispatchReport:
    absorbed: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    #: sinks that were down (or paused) in this pass, with the reason
    down: dict[str, str] = field(default_factory=dict)
    #: --dry-run: what would have been sent
    previews: list[tuple[str, str, Message]] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(o.action for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return not self.down and not any(o.action in {"failed", "dead"} for o in self.outcomes)


class Dispatcher:
    def __init__(
        self,
        warehouse: Warehouse,
        config: TicketsConfig,
        sinks: list[Sink],
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        state_path: Path | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.config = config
        self.sinks = sinks
        self.clock = clock or SystemClock()
        self.backoff = Backoff(config.retry.base, config.retry.cap, rng or random.Random())
        self.state_path = state_path or warehouse.state_dir / STATE_FILE
        self.renderers: dict[str, Renderer] = {}
        for sink in sinks:
            if sink.markup.name not in self.renderers:
                renderer = Renderer(sink.markup, config.templates)
                renderer.check()
                self.renderers[sink.markup.name] = renderer

    def open_store(self) -> StateStore:
        return StateStore(self.state_path)

    # -- one pass ------------------------------------------------------------------------------------
    def run_once(self, *, dry_run: bool = False) -> DispatchReport:
        """Absorb new hits and deliver; with ``dry_run`` nothing is sent and nothing is kept."""
        report = DispatchReport()
        if dry_run:
            store = self.open_store()
            try:
                scratch = store.copy_in_memory()
            finally:
                store.close()
            try:
                report.absorbed = self._absorb(scratch)
                for sink in self.sinks:
                    self._run_sink(_Recorder(sink, report), scratch, report)
            finally:
                scratch.close()
            return report
        with DispatchLock(self.state_path.parent):
            store = self.open_store()
            try:
                report.absorbed = self._absorb(store)
                for sink in self.sinks:
                    self._run_sink(sink, store, report)
            finally:
                store.close()
        return report

    def retry(self, sink: str | None = None, key: str | None = None) -> int:
        """Put dead-lettered deliveries back in the queue; the next pass resends them."""
        with DispatchLock(self.state_path.parent):
            store = self.open_store()
            try:
                return store.clear_dead(sink, key)
            finally:
                store.close()

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()

    # -- absorb --------------------------------------------------------------------------------------
    def _absorb(self, store: StateStore) -> int:
        dt_ = Warehouse(self.warehouse.root).table(HITS_TABLE)  # a fresh snapshot
        if dt_ is None:
            return 0
        version = dt_.version()
        mark = store.watermark()
        if version <= mark:
            return 0
        table = dt_.to_pyarrow_dataset().to_table(filter=pc.field(VERSION_COLUMN) > mark)
        table = table.sort_by([(VERSION_COLUMN, "ascending"), ("hit_id", "ascending")])
        return store.absorb(table.to_pylist(), version, self.clock.now())

    # -- deliver -------------------------------------------------------------------------------------
    def _run_sink(self, sink: Sink, store: StateStore, report: DispatchReport) -> None:
        now = self.clock.now()
        health = store.health(sink.name)
        if health is not None and health.retry_at is not None and health.retry_at > now:
            report.down[sink.name] = f"paused until {health.retry_at:%H:%M:%S} after: {health.last_error}"
            return
        quiet = self.config.auto_resolve_after
        quiet_before = now - dt.timedelta(seconds=quiet) if quiet is not None else None
        names = [s.name for s in self.sinks]
        for key in store.due(sink.name, quiet_before):
            inc = store.incident(key)
            dl = store.delivery(sink.name, key) or Delivery(sink.name, key)
            try:
                outcome = self._deliver(sink, store, inc, dl)
            except _SinkDown as exc:
                dl.attempts += 1
                dl.last_error = str(exc)
                store.save(dl)
                health = store.health(sink.name)
                pause = self._pause(exc.error, (health.failures if health else 0) + 1)
                store.sink_failed(sink.name, str(exc), self.clock.now() + pause)
                report.down[sink.name] = str(exc)
                report.outcomes.append(Outcome(sink.name, key, "failed", dl.remote_id, str(exc)))
                return
            except PermanentError as exc:
                dl.dead_reason = str(exc)
                dl.dead_at = self.clock.now()
                store.save(dl)
                report.outcomes.append(Outcome(sink.name, key, "dead", dl.remote_id, str(exc)))
                continue
            store.sink_ok(sink.name)
            store.prune(key, names)
            if outcome is not None:
                report.outcomes.append(outcome)

    def _pause(self, error: TransientError, failures: int) -> dt.timedelta:
        """How long a sink that failed a whole pass rests: grows with consecutive failed passes."""
        retry = self.config.retry
        wait = Backoff(retry.base, MAX_PAUSE, self.backoff.rng).delay(retry.attempts + failures - 1)
        if error.retry_after is not None:
            wait = max(wait, error.retry_after)
        return dt.timedelta(seconds=min(wait, MAX_PAUSE))

    def _deliver(self, sink: Sink, store: StateStore, inc: Incident, dl: Delivery) -> Outcome | None:
        now = self.clock.now()
        if dl.remote_id is None:
            return self._open(sink, store, inc, dl)
        if inc.seq > dl.sent_seq:
            interval = dt.timedelta(seconds=self.config.update_interval)
            if dl.last_update is not None and now - dl.last_update < interval:
                due = dl.last_update + interval
                return Outcome(
                    sink.name, inc.dedup_key, "held", dl.remote_id, f"next update at {due:%H:%M:%S}"
                )
            return self._update(sink, store, inc, dl)
        if self.config.auto_resolve_after is not None and dl.state == "open":
            current = self._get(sink, dl.remote_id)
            if current is not None and not current.closed:
                msg = self._message(sink, "resolve", inc, inc.seq)
                self._call(sink.resolve, dl.remote_id, msg)
            dl.state = "resolved"
            dl.last_error = None
            store.save(dl)
            return Outcome(sink.name, inc.dedup_key, "resolved", dl.remote_id)
        return None

    def _open(self, sink: Sink, store: StateStore, inc: Incident, dl: Delivery) -> Outcome | None:
        """Find-or-create: the lookup before creating is what makes creation idempotent."""
        old = {p["id"] for p in dl.previous}
        found = [t for t in self._call(sink.find, inc.token) if t.id not in old]
        alive = [t for t in found if not t.closed]
        if alive:
            self._adopt(dl, alive[0], inc)
            store.save(dl)
            if inc.seq > dl.sent_seq:
                self._update(sink, store, inc, dl)
            return Outcome(sink.name, inc.dedup_key, "adopted", dl.remote_id)
        if found and sink.on_closed == "reopen" and found[0].reopenable:
            self._adopt(dl, found[0], inc)  # closed before our state knew it: reopen below
            store.save(dl)
            return self._update(sink, store, inc, dl)
        for t in found:
            dl.previous.append({"id": t.id, "url": t.url})
        msg = self._message(
            sink, "open", inc, inc.seq, previous=[str(p["url"] or p["id"]) for p in dl.previous]
        )
        known = old | {str(p["id"]) for p in dl.previous}

        def recover() -> RemoteTicket | None:
            return next((t for t in sink.find(inc.token) if t.id not in known and not t.closed), None)

        ticket = self._call(sink.create, msg, recover=recover)
        self._sent(dl, inc, ticket)
        store.save(dl)
        return Outcome(sink.name, inc.dedup_key, "relinked" if dl.previous else "opened", ticket.id)

    def _update(self, sink: Sink, store: StateStore, inc: Incident, dl: Delivery) -> Outcome | None:
        assert dl.remote_id is not None
        current = self._get(sink, dl.remote_id)
        if current is None or current.closed:
            reopen = (
                current is not None
                and current.reopenable
                and (dl.state == "resolved" or sink.on_closed == "reopen")
            )
            if not reopen:  # a person closed it (or deleted it): a new ticket that links it
                dl.previous.append({"id": dl.remote_id, "url": dl.remote_url})
                dl.remote_id, dl.remote_url, dl.state = None, None, "new"
                store.save(dl)  # before creating: a crash now leaves the new ticket findable
                return self._open(sink, store, inc, dl)
            msg = self._message(sink, "reopen", inc, inc.seq, news=store.news(inc.dedup_key, dl.sent_seq))
            self._call(sink.reopen, dl.remote_id, msg)
            action = "reopened"
        else:
            msg = self._message(sink, "update", inc, inc.seq, news=store.news(inc.dedup_key, dl.sent_seq))
            self._call(sink.comment, dl.remote_id, msg)
            action = "updated"
        self._sent(dl, inc, None)
        store.save(dl)
        return Outcome(sink.name, inc.dedup_key, action, dl.remote_id)

    def _get(self, sink: Sink, remote_id: str) -> RemoteTicket | None:
        """The ticket's state, or None if the tracker says it no longer exists."""
        try:
            return self._call(sink.get, remote_id)
        except PermanentError as exc:
            if exc.status in (404, 410):
                return None
            raise

    def _adopt(self, dl: Delivery, ticket: RemoteTicket, inc: Incident) -> None:
        dl.remote_id, dl.remote_url, dl.state = ticket.id, ticket.url, "open"
        dl.sent_seq = min(inc.seq, max(dl.sent_seq, ticket.seq or 0))
        if dl.sent_seq == inc.seq:
            dl.sent_count = inc.count
        dl.last_update = None  # what the ticket lacks goes out now

    def _sent(self, dl: Delivery, inc: Incident, ticket: RemoteTicket | None) -> None:
        if ticket is not None:
            dl.remote_id, dl.remote_url = ticket.id, ticket.url
        dl.state = "open"
        dl.sent_seq, dl.sent_count = inc.seq, inc.count
        dl.last_update = self.clock.now()
        dl.attempts, dl.last_error = 0, None

    def _message(
        self,
        sink: Sink,
        kind: Kind,
        inc: Incident,
        seq: int,
        *,
        news: News | None = None,
        previous: list[str] | None = None,
    ) -> Message:
        title, body = self.renderers[sink.markup.name].render(
            kind,
            inc,
            seq=seq,
            news=news,
            previous=previous,
            quiet=self.config.auto_resolve_after,
            max_body=sink.max_body,
            max_samples=self.config.max_samples,
        )
        return Message(kind, title, body, inc.token, seq, inc, news, previous or [])

    def _call(self, fn: Callable[..., T], *args: Any, recover: Callable[[], T | None] | None = None) -> T:
        """``fn(*args)`` with retries of transient failures: backoff with jitter, Retry-After honoured.

        ``recover`` runs before every retry: a create whose answer was lost (timeout, 502) may
        have happened, so the retry first looks for the ticket and returns it if it is there.
        """
        retry = self.config.retry
        failed = False
        for attempt in range(retry.attempts):
            try:
                if failed and recover is not None:
                    found = recover()
                    if found is not None:
                        return found
                return fn(*args)
            except TransientError as exc:
                failed = True
                if attempt + 1 >= retry.attempts:
                    raise _SinkDown(exc) from None
                wait = self.backoff.delay(attempt)
                if exc.retry_after is not None:
                    wait = exc.retry_after + self.backoff.rng.random() * min(1.0, exc.retry_after / 10)
                if wait > retry.max_wait:
                    raise _SinkDown(exc) from None
                self.clock.sleep(wait)
        raise AssertionError("unreachable")


class _Recorder(Sink):
    """Stands in for a sink during ``--dry-run``: records what would be sent, sends nothing."""

    def __init__(self, real: Sink, report: DispatchReport) -> None:
        self.name, self.markup, self.on_closed, self.max_body = (
            real.name,
            real.markup,
            real.on_closed,
            real.max_body,
        )
        self.report = report

    def find(self, token: str) -> list[RemoteTicket]:
        return []

    def create(self, msg: Message) -> RemoteTicket:
        self.report.previews.append((self.name, f"create (unless a ticket already carries {msg.token})", msg))
        return RemoteTicket(id="(new)")

    def get(self, remote_id: str) -> RemoteTicket:
        return RemoteTicket(id=remote_id)

    def comment(self, remote_id: str, msg: Message) -> None:
        self.report.previews.append((self.name, f"comment on {remote_id}", msg))

    def reopen(self, remote_id: str, msg: Message) -> None:
        self.report.previews.append((self.name, f"reopen {remote_id}", msg))

    def resolve(self, remote_id: str, msg: Message) -> None:
        self.report.previews.append((self.name, f"resolve {remote_id}", msg))

"""Sinks for tests, shipped next to the seam: an in-memory tracker and one that fails on purpose.

``FailingSink(fail_every=3, transient=True)`` fails every third call with a ``TransientError``
(``transient=False``: a ``PermanentError``); with ``lose_reply=True`` the failing call *does* its
work first and then fails, like a tracker that created the ticket but whose answer never arrived.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Literal

from tickets.base import Message, RemoteTicket, Sink, parse_marker
from tickets.errors import PermanentError, TransientError
from tickets.markup import Markdown, Markup


@dataclass
class MemoryTicket:
    id: str
    title: str
    body: str
    token: str
    closed: bool = False
    comments: list[tuple[str, str]] = field(default_factory=list)  # (kind, body)


class MemorySink(Sink):
    """A tracker in a dict; ``close_by_person`` plays the admin who closes a ticket."""

    def __init__(
        self,
        name: str = "memory",
        *,
        on_closed: Literal["reopen", "new"] = "reopen",
        markup: Markup | None = None,
    ) -> None:
        self.name = name
        self.on_closed = on_closed
        self.markup = markup or Markdown()
        self.tickets: dict[str, MemoryTicket] = {}
        self._ids = itertools.count(1)
        self.calls: list[str] = []

    def by_token(self, token: str) -> list[MemoryTicket]:
        return [t for t in self.tickets.values() if t.token == token]

    def close_by_person(self, ticket_id: str) -> None:
        self.tickets[ticket_id].closed = True

    def find(self, token: str) -> list[RemoteTicket]:
        self.calls.append("find")
        return [self._remote(t) for t in sorted(self.by_token(token), key=lambda t: -int(t.id))]

    def create(self, msg: Message) -> RemoteTicket:
        self.calls.append("create")
        t = MemoryTicket(str(next(self._ids)), msg.title, msg.body, msg.token)
        self.tickets[t.id] = t
        return self._remote(t)

    def get(self, remote_id: str) -> RemoteTicket:
        self.calls.append("get")
        if remote_id not in self.tickets:
            raise PermanentError(f"{self.name}: no ticket {remote_id}", status=404)
        return self._remote(self.tickets[remote_id])

    def comment(self, remote_id: str, msg: Message) -> None:
        self.calls.append("comment")
        self.tickets[remote_id].comments.append((msg.kind, msg.body))

    def reopen(self, remote_id: str, msg: Message) -> None:
        self.calls.append("reopen")
        self.tickets[remote_id].closed = False
        self.tickets[remote_id].comments.append((msg.kind, msg.body))

    def resolve(self, remote_id: str, msg: Message) -> None:
        self.calls.append("resolve")
        self.tickets[remote_id].closed = True
        self.tickets[remote_id].comments.append((msg.kind, msg.body))

    def _remote(self, t: MemoryTicket) -> RemoteTicket:
        return RemoteTicket(
            id=t.id, url=f"memory://{t.id}", closed=t.closed, seq=parse_marker(t.body, t.token)[1]
        )


class FailingSink(MemorySink):
    """A ``MemorySink`` whose every ``fail_every``-th call fails (see the module docstring)."""

    def __init__(
        self,
        name: str = "failing",
        *,
        fail_every: int = 2,
        transient: bool = True,
        lose_reply: bool = False,
        retry_after: float | None = None,
        on_closed: Literal["reopen", "new"] = "reopen",
    ) -> None:
        super().__init__(name, on_closed=on_closed)
        self.fail_every = fail_every
        self.transient = transient
        self.lose_reply = lose_reply
        self.retry_after = retry_after
        self.n = 0
        self.failures = 0

    def _maybe_fail(self, op: str, before: bool) -> None:
        if before:
            self.n += 1
        if self.fail_every <= 0 or self.n % self.fail_every:
            return
        if before == self.lose_reply:
            return  # fail only at the chosen moment: before the work, or after it (reply lost)
        self.failures += 1
        if self.transient:
            raise TransientError(f"{self.name}: {op} failed (simulated)", retry_after=self.retry_after)
        raise PermanentError(f"{self.name}: {op} refused (simulated)", status=400)

    def find(self, token: str) -> list[RemoteTicket]:
        self._maybe_fail("find", True)
        result = super().find(token)
        self._maybe_fail("find", False)
        return result

    def create(self, msg: Message) -> RemoteTicket:
        self._maybe_fail("create", True)
        result = super().create(msg)
        self._maybe_fail("create", False)
        return result

    def get(self, remote_id: str) -> RemoteTicket:
        self._maybe_fail("get", True)
        result = super().get(remote_id)
        self._maybe_fail("get", False)
        return result

    def comment(self, remote_id: str, msg: Message) -> None:
        self._maybe_fail("comment", True)
        super().comment(remote_id, msg)
        self._maybe_fail("comment", False)

    def reopen(self, remote_id: str, msg: Message) -> None:
        self._maybe_fail("reopen", True)
        super().reopen(remote_id, msg)
        self._maybe_fail("reopen", False)

    def resolve(self, remote_id: str, msg: Message) -> None:
        self._maybe_fail("resolve", True)
        super().resolve(remote_id, msg)
        self._maybe_fail("resolve", False)

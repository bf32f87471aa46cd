"""The seam every sink implements: find, create, read, comment, reopen, resolve.

The dispatcher decides *what* to do (open, update, reopen, open-new-linking-old, resolve); a sink
only knows *how* its tracker does it. Every sink stores the incident's token (``kf-…``) in the
ticket — as a label, a correlation id or a line in the body — so that ``find`` can answer "is
there already a ticket for this key?" before anything is created: that lookup is what makes
creation idempotent across crashes.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass, field
from typing import Literal

from tickets.markup import Markup
from tickets.model import Incident, News

Kind = Literal["open", "update", "reopen", "resolve"]

#: The body line that carries the token and the number of hits the ticket was opened with.
MARKER_RE = re.compile(r"knownfix-key: (kf-[0-9a-f]{16})(?: seq: (\d+))?")


def marker(token: str, seq: int) -> str:
    return f"knownfix-key: {token} seq: {seq}"


def parse_marker(text: str | None, token: str) -> tuple[bool, int | None]:
    """Whether ``text`` carries ``token``'s marker, and the seq recorded beside it."""
    for m in MARKER_RE.finditer(text or ""):
        if m.group(1) == token:
            return True, int(m.group(2)) if m.group(2) else None
    return False, None


@dataclass(frozen=True)
class RemoteTicket:
    """A ticket as the tracker reports it."""

    id: str
    url: str | None = None
    closed: bool = False
    #: hits the ticket reflected when it was created (from its body marker), if known
    seq: int | None = None
    #: False when the tracker does not let a closed ticket be reopened (e.g. ServiceNow "Closed")
    reopenable: bool = True


@dataclass(frozen=True)
class Message:
    """One thing to send: rendered in the sink's markup, plus the structured incident behind it."""

    kind: Kind
    title: str
    body: str
    token: str
    seq: int
    incident: Incident
    news: News | None = None
    previous: list[str] = field(default_factory=list)  # links of older tickets of this key


class Sink(abc.ABC):
    """A ticket system. Methods raise ``TransientError`` or ``PermanentError``, nothing else."""

    #: the sink's name in the config (``type`` unless given), used in state and messages
    name: str
    markup: Markup
    #: "reopen" the closed ticket when the failure comes back, or open a "new" one linking it
    on_closed: Literal["reopen", "new"] = "reopen"
    #: longest body the tracker accepts (characters)
    max_body: int = 60000

    @abc.abstractmethod
    def find(self, token: str) -> list[RemoteTicket]:
        """Tickets carrying ``token``, newest first."""

    @abc.abstractmethod
    def create(self, msg: Message) -> RemoteTicket:
        """Open a ticket whose body or fields carry ``msg.token``."""

    @abc.abstractmethod
    def get(self, remote_id: str) -> RemoteTicket:
        """The ticket's current state (was it closed by a person?)."""

    @abc.abstractmethod
    def comment(self, remote_id: str, msg: Message) -> None:
        """Add ``msg.body`` as a comment / note / work note."""

    @abc.abstractmethod
    def reopen(self, remote_id: str, msg: Message) -> None:
        """Move a closed ticket back to an open state, with ``msg.body`` as a note."""

    @abc.abstractmethod
    def resolve(self, remote_id: str, msg: Message) -> None:
        """Close the ticket with ``msg.body`` as the closing note (auto-resolve)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

"""Errors of the ticket sinks, typed by what the dispatcher should do next.

A ``TransientError`` is retried with backoff (timeouts, refused connections, 429, 5xx); a
``PermanentError`` goes to the dead-letter list with its reason (400/401/403/404/422) until
``knownfix tickets retry``; a ``SinkConfigError`` stops start-up with what to fix. Messages never
carry credentials: sinks build them through ``secrets.Redactor``.
"""

from __future__ import annotations


class TicketError(Exception):
    """Base of the ticket errors; ``str()`` says what happened and, where it helps, what to do."""


class SinkConfigError(TicketError):
    """A sink is configured wrongly (missing credential, file readable by others, bad option)."""


class TransientError(TicketError):
    """Worth retrying later; ``retry_after`` is the server's own hint in seconds, if it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(TicketError):
    """Retrying the same request will fail the same way; needs a person (dead-letter)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DispatchLockedError(TicketError):
    """Another process is dispatching tickets from the same warehouse."""

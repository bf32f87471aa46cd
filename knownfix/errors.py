"""The one error type the CLI shows as a single line (no traceback) with a non-zero exit code."""

from __future__ import annotations


class KnownfixError(Exception):
    """A problem the user can fix; the message says what to change.

    ``where`` names the place (a file, ``file:line`` or a byte offset) when one is known.
    """

    exit_code = 1

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(message)
        self.where = where

    def __str__(self) -> str:
        text = super().__str__()
        return f"{self.where}: {text}" if self.where else text


class ConfigError(KnownfixError):
    """Bad configuration: start-up stops."""

    exit_code = 2

"""Credentials: from an environment variable or a file only its owner can read, never inline.

A secret never reaches a log line, a ticket, the warehouse or an error message: every message a
sink builds from a server's answer passes through its ``Redactor``, which knows the secret values
(and their Basic-auth encoding) and replaces them with ``***``.
"""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from tickets.errors import SinkConfigError

INLINE_REFUSED = (
    "put the secret in an environment variable ({env: NAME}) or in a file only its owner can read "
    "({file: PATH}, chmod 600); secrets written into the config file are refused"
)


class SecretRef(BaseModel):
    """Where a credential comes from: ``{env: NAME}`` or ``{file: PATH}`` (mode 0600)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_inline(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(INLINE_REFUSED)  # the value itself is never echoed
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env: or file:")
        return self

    def describe(self) -> str:
        return f"environment variable {self.env}" if self.env else f"file {self.file}"

    def resolve(self) -> str:
        """The secret's value; a missing variable or a file others can read is a config error."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise SinkConfigError(f"environment variable {self.env} is not set (it holds a credential)")
            return value
        assert self.file is not None
        try:
            st = self.file.stat()
        except OSError as exc:
            raise SinkConfigError(f"credential file {self.file} cannot be read: {exc.strerror}") from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SinkConfigError(
                f"credential file {self.file} is readable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
                f"run: chmod 600 {self.file}"
            )
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            raise SinkConfigError(f"credential file {self.file} belongs to another user; it must be yours")
        value = self.file.read_text(encoding="utf-8").strip()
        if not value:
            raise SinkConfigError(f"credential file {self.file} is empty")
        return value


class Redactor:
    """Replaces known secret values in any text with ``***``."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        self._secrets: list[str] = []
        for s in secrets or []:
            self.add(s)

    def add(self, secret: str, *, user: str | None = None) -> None:
        """Remember ``secret`` (and, with ``user``, its Basic-auth header form)."""
        forms = [secret]
        if user is not None:
            forms.append(base64.b64encode(f"{user}:{secret}".encode()).decode())
        for form in forms:
            if len(form) >= 4 and form not in self._secrets:
                self._secrets.append(form)
        self._secrets.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        return text

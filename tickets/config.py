"""The ``tickets:`` section of the config file and what every sink's section shares.

Durations are seconds or text such as ``90s``, ``5m``, ``2h``, ``1d``, ``1h30m``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s|ms)")
_UNIT = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(value: Any) -> Any:
    """``"1h30m"`` → 5400.0; numbers pass through as seconds."""
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return float(text)
        parts = _PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError(f"not a duration: {value!r} (use seconds or e.g. 90s, 5m, 2h, 1d, 1h30m)")
        return sum(float(n) * _UNIT[u] for n, u in parts)
    return value


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]


class Section(BaseModel):
    """A config section that names the valid keys when it meets an unknown one (a typo)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = [k for k in data if k not in cls.model_fields]
            if unknown:
                kind = data.get("type") if isinstance(data.get("type"), str) else None
                what = f"a {kind} sink" if kind else "this section"
                valid = ", ".join(cls.model_fields)
                raise ValueError(f"unknown key {unknown[0]!r} for {what} (valid keys: {valid})")
        return data


class RetryConfig(Section):
    """Retries of transient failures inside one dispatch pass, then across passes."""

    #: tries of one request within a pass (first try included)
    attempts: int = Field(default=4, ge=1, le=20)
    #: first backoff; doubles each try, with jitter
    base: Duration = 1.0
    #: longest backoff between tries
    cap: Duration = 60.0
    #: a Retry-After longer than this ends the pass for that sink; the next pass tries again
    max_wait: Duration = 120.0


class TicketsConfig(Section):
    """How hits become tickets, whatever the sink."""

    #: at most one update (comment) per ticket per interval; hits in between are summed
    update_interval: Duration = 300.0
    #: close the ticket after this long without a hit (off unless set)
    auto_resolve_after: Duration | None = None
    #: sample lines in a new ticket and in each update
    max_samples: int = Field(default=5, ge=0, le=50)
    #: folder whose .j2 files override the bundled templates
    templates: Path | None = None
    retry: RetryConfig = Field(default_factory=RetryConfig)


class SinkSettings(Section):
    """Options every sink has."""

    #: distinct name when two sinks share a type (state and ``tickets list`` use it)
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    #: when a person closed the ticket and the failure comes back: reopen it, or open a new one
    #: that links the old one
    on_closed: Literal["reopen", "new"] = "reopen"
    #: seconds to wait for the tracker's answer
    timeout: Duration = 10.0

"""Time and waiting, injectable so that tests of retries and rate limits never really wait."""

from __future__ import annotations

import datetime as dt
import random
import time
from dataclasses import dataclass, field
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real wall clock (UTC) and ``time.sleep``."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to (or when something sleeps on it); records the sleeps."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
        self.sleeps: list[float] = []

    def now(self) -> dt.datetime:
        return self._now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self._now += dt.timedelta(seconds=seconds)


@dataclass
class Backoff:
    """Exponential backoff with jitter: attempt n waits between half and all of base·2ⁿ (capped).

    The jitter spreads retries of many keys (and many knownfix instances) so that a tracker
    coming back after an outage is not hit by all of them in the same second.
    """

    base: float = 1.0
    cap: float = 60.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        ceiling = min(self.cap, self.base * (2 ** max(attempt, 0)))
        return ceiling / 2 + self.rng.random() * ceiling / 2

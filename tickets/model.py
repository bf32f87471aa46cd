"""What a ticket is about: an incident (all hits of one dedup key) and the news since the last update."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

TOKEN_PREFIX = "kf-"


def ticket_token(dedup_key: str) -> str:
    """The short, markup-safe marker stored in the remote ticket (label, correlation id, body line).

    Derived from the dedup key alone, so a restart with lost local state still finds the ticket.
    """
    return TOKEN_PREFIX + hashlib.sha256(dedup_key.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Sample:
    source_file: str
    source_offset: int | None
    line_number: int | None
    text: str

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Sample:
        return cls(
            str(d.get("source_file") or ""),
            d.get("source_offset"),
            d.get("line_number"),
            str(d.get("text") or ""),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_file": self.source_file,
            "source_offset": self.source_offset,
            "line_number": self.line_number,
            "text": self.text,
        }


@dataclass(frozen=True)
class FixCause:
    cause: str
    check: str
    steps: list[str]
    commands: list[str]


@dataclass(frozen=True)
class Fix:
    """The documented fix of a signature rule (``fix_summary`` + ``fix_json`` of the hit)."""

    summary: str
    causes: list[FixCause]

    @classmethod
    def parse(cls, summary: str | None, fix_json: str | None) -> Fix:
        data: dict[str, Any] = {}
        if fix_json:
            try:
                loaded = json.loads(fix_json)
                data = loaded if isinstance(loaded, dict) else {}
            except ValueError:
                data = {}
        causes = []
        for c in data.get("causes") or []:
            if not isinstance(c, dict):
                continue
            causes.append(
                FixCause(
                    cause=str(c.get("cause") or ""),
                    check=str(c.get("check") or ""),
                    steps=[str(s) for s in c.get("steps") or []],
                    commands=[str(s) for s in c.get("commands") or []],
                )
            )
        return cls(summary=str(summary or data.get("summary") or ""), causes=causes)


@dataclass
class Incident:
    """Everything known about one dedup key, as kept in the dispatcher's state."""

    dedup_key: str
    rule_id: str
    rule_title: str
    severity: str
    kind: str
    table_name: str
    group_key: str
    fix: Fix
    references: list[str]
    query: str
    first_seen: dt.datetime | None
    last_seen: dt.datetime | None
    count: int
    seq: int  # number of hits absorbed so far; deliveries record up to which seq they reported
    last_activity: dt.datetime
    samples: list[Sample] = field(default_factory=list)  # the first few, for the ticket body

    @property
    def token(self) -> str:
        return ticket_token(self.dedup_key)


@dataclass(frozen=True)
class News:
    """Hits of one key not yet reported to a sink: the content of an update comment."""

    count: int
    hits: int
    first_seen: dt.datetime | None
    last_seen: dt.datetime | None
    samples: list[Sample]

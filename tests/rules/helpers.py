"""Helpers for the rule engine's tests: real Exchange SMTP logs, rule files written to disk."""

from __future__ import annotations

import textwrap
from pathlib import Path

from ingest.backfill import ingest_paths
from rules.evaluator import Evaluator
from rules.loader import RuleSet, load_rules
from warehouse.store import Warehouse

SEND_HEADER = (
    "#Software: Microsoft Exchange Server\r\n"
    "#Version: 15.01.0225.042\r\n"
    "#Log-type: SMTP Send Protocol Log\r\n"
    "#Date: 2016-07-19T12:13:14.863Z\r\n"
    "#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context\r\n"
)


def smtp_line(
    second: int, context: str, *, connector: str = "Outbound to Office 365", minute: int = 13
) -> str:
    """One send-log line at 2016-07-19T12:<minute>:<second>Z whose context is ``context``."""
    return f"2016-07-19T12:{minute:02d}:{second:02d}.000Z,{connector},08D3AFC581A92D{second:02X},8,,,*,,{context}\r\n"


def unknown_credentials(second: int, **kw: object) -> str:
    return smtp_line(second, "TLS negotiation failed with error UnknownCredentials", **kw)  # type: ignore[arg-type]


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def rules_file(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / "rules" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


FIX = """
    fix:
      summary: test fix
      causes:
        - cause: a cause
          check: a check
          steps: [a step]
    references: [seed:000_d70211bf42e44658.txt]
"""


def load_only(path: Path) -> RuleSet:
    """The rules of ``path`` alone (no library), failing the test on any load problem."""
    rs = load_rules([path], library=False)
    assert not rs.problems, [str(p) for p in rs.problems]
    return rs


def ingest_evaluating(wh: Warehouse, paths: list[Path], rs: RuleSet) -> Evaluator:
    """Ingest like ``knownfix ingest``: rules evaluated after every commit."""
    evaluator = Evaluator(wh, rs)
    ingest_paths(wh, paths, after_commit=lambda summary: evaluator.evaluate(list(summary.versions)))
    return evaluator

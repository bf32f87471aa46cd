"""Errors of the rule engine. Each problem knows where it is (``file:line``) and what to change.

``rules lint`` reports every problem of every file in one run, so loading collects problems
instead of stopping at the first; the caller decides whether any problem is fatal.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a rule file: where, and a message that says what to change."""

    file: str
    line: int | None
    message: str
    rule_id: str | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        rule = f" (rule {self.rule_id})" if self.rule_id else ""
        return f"{self.where}: {self.message}{rule}"


class RuleError(Exception):
    """Base of the rule engine's errors; ``str()`` is one line a user can act on."""


class RuleLoadError(RuleError):
    """One or more rule files are invalid; ``problems`` lists every one found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = str(problems[0]) if problems else "invalid rules"
        more = (
            f" (and {len(problems) - 1} more problem(s); run `knownfix rules lint`)"
            if len(problems) > 1
            else ""
        )
        super().__init__(first + more)


class RuleEvalError(RuleError):
    """Evaluating rules over a table failed (the rows stay committed; evaluation is retried)."""


class UnknownRuleError(RuleError):
    """A rule id that no loaded file defines."""

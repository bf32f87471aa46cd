"""The rule format, validated with pydantic: a rule is data, never code.

A rule names its ``table``, a ``match`` tree of field tests (Sigma-like ``field|modifier: value``
keys combined with ``all`` / ``any`` / ``not``), optionally the entity it is about (``group_by``),
a ``threshold`` (count, or distinct count, of matching rows within a window) or a ``correlate``
(this signature followed by another rule's within a window), the documented ``fix`` with its
``references``, and ``examples`` in the source's own format that must and must not match.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

RULE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{2,99}$")
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Severity(enum.StrEnum):
    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class Op(enum.StrEnum):
    """What a field test compares; ``equals`` is the default (``field: value``)."""

    equals = "equals"
    contains = "contains"
    starts_with = "startswith"
    ends_with = "endswith"
    regex = "regex"
    cidr = "cidr"
    exists = "exists"
    gt = "gt"
    gte = "gte"
    lt = "lt"
    lte = "lte"


NUMERIC_OPS = frozenset({Op.gt, Op.gte, Op.lt, Op.lte})
#: Modifier spellings accepted after ``field|`` (Sigma's names included), and what they mean.
MODIFIERS: dict[str, Op | str] = {
    "equals": Op.equals,
    "eq": Op.equals,
    "in": Op.equals,
    "contains": Op.contains,
    "startswith": Op.starts_with,
    "endswith": Op.ends_with,
    "regex": Op.regex,
    "re": Op.regex,
    "cidr": Op.cidr,
    "exists": Op.exists,
    "gt": Op.gt,
    "gte": Op.gte,
    "lt": Op.lt,
    "lte": Op.lte,
    "all": "all",  # a list of values must all match (default: any)
    "cased": "cased",  # case-sensitive (default: case-insensitive)
}

Scalar = str | int | float | bool


def parse_duration(value: Any) -> int:
    """Seconds from ``90``, ``"30s"``, ``"5m"``, ``"2h"`` or ``"7d"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a text like 30s, 5m, 2h, 7d")
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and (m := _DURATION.match(value)) and int(m.group(1)) > 0:
        return int(m.group(1)) * _UNITS[m.group(2)]
    raise ValueError(f"{value!r} is not a duration; write a number of seconds or 30s, 5m, 2h, 7d")


Duration = Annotated[int, BeforeValidator(parse_duration)]


class FieldTest(BaseModel):
    """``field|op: values``: true when the field's value passes the test for any (or all) values."""

    model_config = ConfigDict(frozen=True)

    field: str
    op: Op = Op.equals
    values: tuple[Scalar, ...]
    match_all: bool = False
    cased: bool = False
    line: int | None = None


class AllOf(BaseModel):
    model_config = ConfigDict(frozen=True)
    items: tuple[Condition, ...]


class AnyOf(BaseModel):
    model_config = ConfigDict(frozen=True)
    items: tuple[Condition, ...]


class NotOf(BaseModel):
    model_config = ConfigDict(frozen=True)
    item: Condition


Condition = FieldTest | AllOf | AnyOf | NotOf


def field_tests(cond: Condition) -> list[FieldTest]:
    """Every leaf test of a condition tree, in order."""
    if isinstance(cond, FieldTest):
        return [cond]
    if isinstance(cond, NotOf):
        return field_tests(cond.item)
    return [t for item in cond.items for t in field_tests(item)]


class Strict(BaseModel):
    """Unknown keys are errors, so a typo in a rule never passes silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Threshold(Strict):
    """Fire when ``count`` matching rows (or distinct values of ``distinct``) fall in ``window``."""

    count: int = Field(ge=1)
    window: Duration
    distinct: str | None = None


class Correlate(Strict):
    """This rule's signature followed by rule ``followed_by``'s within ``within``, same ``on`` key."""

    followed_by: str
    within: Duration
    on: list[str] = Field(default_factory=list)


class Cause(Strict):
    """One documented cause: how to tell it from the others, and what to do."""

    cause: str
    check: str
    steps: list[str] = Field(min_length=1)
    commands: list[str] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list)


class Fix(Strict):
    summary: str
    #: Most likely first.
    causes: list[Cause] = Field(min_length=1)


class Example(Strict):
    """A sample of the source in its own format; ``header`` names a file-level header to prepend."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)  # bytes matter here

    text: str
    header: str | None = None
    name: str | None = None

    def render(self, headers: dict[str, str]) -> str:
        """The example as the source writes it: the named header first, then the lines."""
        body = self.text if self.text.endswith("\n") else self.text + "\n"
        if self.header is None:
            return body
        head = headers.get(self.header, "")
        return (head if head.endswith("\n") or not head else head + "\n") + body


def _example(value: Any) -> Any:
    return {"text": value} if isinstance(value, str) else value


ExampleItem = Annotated[Example, BeforeValidator(_example)]


class Examples(Strict):
    match: list[ExampleItem] = Field(default_factory=list)
    no_match: list[ExampleItem] = Field(default_factory=list)


class Rule(Strict):
    id: str
    title: str
    description: str = ""
    severity: Severity = Severity.medium
    tags: list[str] = Field(default_factory=list)
    table: str
    match: Condition
    group_by: list[str] = Field(default_factory=list)
    #: Fields of ``group_by`` that make the ticket dedup key (default: all of them).
    dedup_by: list[str] | None = None
    threshold: Threshold | None = None
    correlate: Correlate | None = None
    fix: Fix | None = None
    references: list[str] = Field(default_factory=list)
    examples: Examples = Field(default_factory=Examples)
    #: "signature" when the rule carries a documented fix; "detection" (e.g. Sigma) otherwise.
    kind: Literal["signature", "detection"] = "signature"
    #: Where the rule was loaded from (``file:line``), for messages.
    origin: str = ""

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not RULE_ID.match(value):
            raise ValueError(
                f"rule id {value!r} must be 3-100 characters of lower-case letters, digits, '.', '_' "
                "or '-', starting with a letter or digit"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if self.threshold is not None and self.correlate is not None:
            raise ValueError("a rule has either a threshold or a correlate, not both; split it in two rules")
        if self.kind == "signature" and self.fix is None:
            raise ValueError("a signature rule needs a fix (summary and causes); Sigma detections have none")
        if self.kind == "signature" and not self.references:
            raise ValueError("a signature rule needs references: where its fix is documented")
        if self.dedup_by is not None and not set(self.dedup_by) <= set(self.group_by):
            raise ValueError("dedup_by must list fields of group_by")
        return self

    @property
    def window(self) -> int | None:
        if self.threshold is not None:
            return self.threshold.window
        if self.correlate is not None:
            return self.correlate.within
        return None


RULE_KEYS = list(Rule.model_fields)

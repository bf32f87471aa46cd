"""SigmaHQ rules for Windows event logs, loaded as knownfix detections over the ``events`` table.

pySigma parses the file (modifiers, ``1 of selection*``, ``all of them``); the parsed condition
tree is then translated into a knownfix condition, so a Sigma rule is compiled, validated and
evaluated exactly like a library rule. Sigma has no fix, so such a rule is a "detection".
"""

from __future__ import annotations

import re
from typing import Any

from sigma.collection import SigmaCollection
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from rules.compiler import re_escape
from rules.errors import Problem
from rules.model import AllOf, AnyOf, Condition, FieldTest, NotOf, Op, Rule, Severity

TABLE = "events"
#: Sigma's Windows field names -> columns of ``events``; any other field is an EventData name.
FIELD_MAP = {
    "eventid": "event_id",
    "provider_name": "provider",
    "provider": "provider",
    "source": "provider",
    "channel": "channel",
    "computer": "computer",
    "computername": "computer",
    "hostname": "computer",
    "level": "level",
    "message": "message",
    "eventrecordid": "record_id",
}
#: Sigma ``logsource.service`` -> the event log channel it reads.
SERVICE_CHANNELS = {
    "system": "System",
    "security": "Security",
    "application": "Application",
    "powershell": "Microsoft-Windows-PowerShell/Operational",
    "sysmon": "Microsoft-Windows-Sysmon/Operational",
    "taskscheduler": "Microsoft-Windows-TaskScheduler/Operational",
    "wmi": "Microsoft-Windows-WMI-Activity/Operational",
    "dns-server": "DNS Server",
    "driver-framework": "Microsoft-Windows-DriverFrameworks-UserMode/Operational",
    "ntlm": "Microsoft-Windows-NTLM/Operational",
    "firewall-as": "Microsoft-Windows-Windows Firewall With Advanced Security/Firewall",
    "msexchange-management": "MSExchange Management",
}
#: Keywords (values without a field) search the whole event.
KEYWORD_FIELD = "raw"
SEVERITY = {"informational": "info", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}


class SigmaUnsupported(ValueError):
    """A Sigma construct knownfix cannot evaluate (the message says which)."""


def field_name(sigma_field: str) -> str:
    return FIELD_MAP.get(sigma_field.lower(), f"event_data.{sigma_field}")


def _glob_regex(parts: list[Any]) -> str:
    out = []
    for p in parts:
        if p is SpecialChars.WILDCARD_MULTI:
            out.append(".*")
        elif p is SpecialChars.WILDCARD_SINGLE:
            out.append(".")
        elif isinstance(p, str):
            out.append(re_escape(p))
        else:
            raise SigmaUnsupported(f"placeholder {p} in a Sigma value")
    return "^" + "".join(out) + "$"


def _string_test(name: str, value: SigmaString) -> FieldTest:
    parts = list(value.s)
    cased = isinstance(value, SigmaCasedString)
    multi = SpecialChars.WILDCARD_MULTI
    inner = parts[1:-1] if len(parts) >= 2 else parts
    if all(isinstance(p, str) for p in parts):
        return FieldTest(field=name, op=Op.equals, values=("".join(str(p) for p in parts),), cased=cased)
    plain_inner = all(isinstance(p, str) for p in inner)
    if len(parts) == 3 and parts[0] is multi and parts[-1] is multi and plain_inner:
        return FieldTest(field=name, op=Op.contains, values=(str(parts[1]),), cased=cased)
    if len(parts) == 2 and parts[-1] is multi and isinstance(parts[0], str):
        return FieldTest(field=name, op=Op.starts_with, values=(parts[0],), cased=cased)
    if len(parts) == 2 and parts[0] is multi and isinstance(parts[1], str):
        return FieldTest(field=name, op=Op.ends_with, values=(parts[1],), cased=cased)
    return FieldTest(field=name, op=Op.regex, values=(_glob_regex(parts),), cased=cased)


def _value_test(name: str, value: Any) -> Condition:
    if isinstance(value, SigmaString):
        return _string_test(name, value)
    if isinstance(value, SigmaNumber):
        return FieldTest(field=name, values=(value.number,))
    if isinstance(value, SigmaBool):
        return FieldTest(field=name, values=(value.boolean,))
    if isinstance(value, SigmaRegularExpression):
        cased = SigmaRegularExpressionFlag.IGNORECASE not in value.flags
        return FieldTest(field=name, op=Op.regex, values=(str(value.regexp.original),), cased=cased)
    if isinstance(value, SigmaCIDRExpression):
        return FieldTest(field=name, op=Op.cidr, values=(value.cidr,))
    if isinstance(value, SigmaCompareExpression):
        if value.op is CompareOperators.NEQ:
            return NotOf(item=FieldTest(field=name, values=(value.number.number,)))
        ops = {
            CompareOperators.LT: Op.lt,
            CompareOperators.LTE: Op.lte,
            CompareOperators.GT: Op.gt,
            CompareOperators.GTE: Op.gte,
        }
        return FieldTest(field=name, op=ops[value.op], values=(value.number.number,))
    if isinstance(value, SigmaExists):
        return FieldTest(field=name, op=Op.exists, values=(value.exists,))
    if isinstance(value, SigmaNull):
        return FieldTest(field=name, op=Op.exists, values=(False,))
    raise SigmaUnsupported(f"value type {type(value).__name__} of field {name}")


def translate(node: Any) -> Condition:
    """pySigma's parsed condition -> a knownfix condition tree."""
    if isinstance(node, ConditionAND | ConditionOR):
        items = tuple(translate(a) for a in node.args)
        if len(items) == 1:
            return items[0]
        return AllOf(items=items) if isinstance(node, ConditionAND) else AnyOf(items=items)
    if isinstance(node, ConditionNOT):
        return NotOf(item=translate(node.args[0]))
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _value_test(field_name(node.field), node.value)
    if isinstance(node, ConditionValueExpression):
        return _value_test(KEYWORD_FIELD, node.value)
    raise SigmaUnsupported(f"condition element {type(node).__name__}")


def to_rule(sigma_rule: SigmaRule, origin: str) -> Rule:
    """A knownfix detection (no fix) from one parsed Sigma rule."""
    logsource = sigma_rule.logsource
    if (logsource.product or "").lower() != "windows":
        raise SigmaUnsupported(f"logsource product {logsource.product!r}; only Windows event log rules load")
    conditions = [translate(c.parse()) for c in sigma_rule.detection.parsed_condition]
    match: Condition = conditions[0] if len(conditions) == 1 else AnyOf(items=tuple(conditions))
    service = (logsource.service or "").lower()
    if service:
        if service not in SERVICE_CHANNELS:
            raise SigmaUnsupported(f"logsource service {service!r}; known: {', '.join(SERVICE_CHANNELS)}")
        match = AllOf(items=(FieldTest(field="channel", values=(SERVICE_CHANNELS[service],)), match))
    title = sigma_rule.title or "Sigma rule"
    rule_id = (
        str(sigma_rule.id)
        if sigma_rule.id
        else "sigma-" + re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    )
    level = sigma_rule.level.name.lower() if sigma_rule.level else "medium"
    refs = [r for r in (sigma_rule.references or []) if r.startswith(("https://", "http://"))]
    return Rule(
        id=rule_id,
        title=title,
        description=sigma_rule.description or "",
        severity=Severity(SEVERITY.get(level, "medium")),
        tags=[str(t) for t in sigma_rule.tags or []],
        table=TABLE,
        match=match,
        references=refs,
        kind="detection",
        origin=origin,
    )


def load_sigma(text: str, file: str) -> tuple[list[Rule], list[Problem]]:
    """Every rule of a Sigma file (one or more YAML documents), and the problems found."""
    problems: list[Problem] = []
    try:
        collection = SigmaCollection.from_yaml(text, collect_errors=True)
    except (SigmaError, ValueError) as exc:
        return [], [Problem(file, None, f"not a valid Sigma rule: {exc}")]
    rules: list[Rule] = []
    for sigma_rule in collection.rules:
        if not isinstance(sigma_rule, SigmaRule):
            problems.append(Problem(file, None, "Sigma correlation and filter documents are not supported"))
            continue
        if sigma_rule.errors:
            problems.append(Problem(file, None, f"not a valid Sigma rule: {sigma_rule.errors[0]}"))
            continue
        try:
            rules.append(to_rule(sigma_rule, f"{file}:1"))
        except (SigmaUnsupported, SigmaError, ValueError) as exc:
            problems.append(Problem(file, 1, f"Sigma rule {sigma_rule.title!r}: {exc}"))
    for err in collection.errors:
        problems.append(Problem(file, None, f"not a valid Sigma rule: {err}"))
    return rules, problems

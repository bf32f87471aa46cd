"""Which rules a run can evaluate against the tables as they are stored.

A header-driven table has the columns its logs gave, so a rule may name a field that no log
has brought yet: such a rule is left out of the run (and applies once the column exists)
rather than failing the rules that can run. A correlation needs both of its sides.
"""

from __future__ import annotations

from collections.abc import Mapping

from rules.loader import RuleSet
from rules.model import Rule, field_tests
from rules.schema import TableSchema, UnknownFieldError


def correlated(rules: RuleSet) -> list[Rule]:
    """The active rules that pair their rows with a partner rule's."""
    return [r for r in rules.active if r.correlate is not None]


def partner(rules: RuleSet, rule: Rule) -> Rule:
    """The rule whose rows must follow ``rule``'s (``correlate.followed_by``)."""
    assert rule.correlate is not None
    return rules.get(rule.correlate.followed_by)


def applies(rule: Rule, rules: RuleSet, schemas: Mapping[str, TableSchema]) -> bool:
    """Whether every field the rule names exists in its table (and its partner's) as stored."""
    schema = schemas.get(rule.table)
    if schema is None:
        return False
    names = [t.field for t in field_tests(rule.match)] + list(rule.group_by)
    if rule.threshold and rule.threshold.distinct:
        names.append(rule.threshold.distinct)
    if rule.correlate is not None:
        other = partner(rules, rule)
        if not applies(other, rules, schemas):
            return False
        names.extend(rule.correlate.on)
        if not all(_resolves(schemas[other.table], n) for n in rule.correlate.on):
            return False
    return all(_resolves(schema, n) for n in names)


def _resolves(schema: TableSchema, name: str) -> bool:
    try:
        schema.resolve(name)
    except UnknownFieldError:
        return False
    return True

"""The row a hit is stored as: its id, keys, fix and the SQL that lists its rows.

A hit covers the rows of one group key in one table version (a version pair for correlations);
its id hashes exactly that, so re-evaluating the same rows gives the same id. A rule's fix and
test are rendered once per evaluator, not once per hit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from rules import scan
from rules.compiler import compile_condition, group_filter, pretty
from rules.model import Rule
from rules.schema import TableSchema


def hit_id(rule_id: str, group_key: str, parts: Sequence[object]) -> str:
    text = "\x1f".join([rule_id, group_key, *(str(p) for p in parts)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class HitRows:
    """Builds hit rows (``warehouse.hits.HITS_SCHEMA``) from the rows of a rule's aggregate query."""

    def __init__(self) -> None:
        self._queries: dict[tuple[str, str], str] = {}
        self._fixes: dict[str, tuple[str, str]] = {}

    def hit(
        self, rule: Rule, schema: TableSchema, row: dict[str, Any], parts: Sequence[object]
    ) -> dict[str, Any]:
        """The hit of one aggregate ``row``; ``parts`` (tables and versions) join its id."""
        values = {name: row.get(f"__g{i}") for i, name in enumerate(rule.group_by)}
        group_key = "; ".join(f"{k}={'' if v is None else v}" for k, v in values.items())
        dedup_fields = rule.dedup_by if rule.dedup_by is not None else rule.group_by
        dedup = "; ".join(f"{k}={'' if values[k] is None else values[k]}" for k in dedup_fields)
        fix = self._fixes.get(rule.id)
        if fix is None and rule.fix is not None:
            fix = self._fixes[rule.id] = (
                rule.fix.summary,
                json.dumps(rule.fix.model_dump(mode="json"), ensure_ascii=False),
            )
        return {
            "hit_id": hit_id(rule.id, group_key, parts),
            "rule_id": rule.id,
            "rule_title": rule.title,
            "severity": str(rule.severity),
            "kind": rule.kind,
            "table_name": rule.table,
            "group_key": group_key,
            "dedup_key": f"{rule.id}|{dedup}",
            "first_seen": row.get("first_seen"),
            "last_seen": row.get("last_seen"),
            "count": int(row["n"]),
            "samples": row["samples"],
            "fix_summary": fix[0] if fix else None,
            "fix_json": fix[1] if fix else None,
            "references": list(rule.references),
            "query": self.query(rule, schema, values),
            "detected_at": dt.datetime.now(dt.UTC),
        }

    def query(self, rule: Rule, schema: TableSchema, values: dict[str, Any]) -> str:
        """The SQL that lists the hit's rows: the rule's test (rendered once per rule), narrowed to the group."""
        key = (rule.id, schema.name)
        where = self._queries.get(key)
        if where is None:
            where = self._queries[key] = pretty(compile_condition(rule.match, schema))
        narrowing = group_filter(values, schema)
        lines = [f"SELECT * FROM {scan.q(rule.table)}", f"WHERE ({where})" if narrowing else f"WHERE {where}"]
        if narrowing:
            lines.append(f"  AND {narrowing}")
        if schema.time_column:
            lines.append(f"ORDER BY {scan.q(schema.time_column)}")
        return "\n".join(lines)

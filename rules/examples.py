"""``rules test``: every example goes through the real parser and the real evaluator.

Each example is written to its own file, all of them are ingested at once into a scratch
warehouse (the caller passes the ingest function: ``rules`` may not import ``ingest``), and then
each rule is evaluated on its example's file alone. An example that parses into the wrong table,
becomes a reject, or matches when it must not, fails with a message saying which and why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rules.evaluator import Evaluator
from rules.loader import RuleSet
from rules.model import Example, Rule
from warehouse.query import connect
from warehouse.store import Warehouse

#: Ingests files or folders into a warehouse (``ingest.backfill.ingest_paths`` in practice).
IngestFn = Callable[[Warehouse, list[Path]], None]
DEFAULT_NAME = "example.log"


@dataclass
class ExampleResult:
    rule_id: str
    kind: str  # "match" or "no_match"
    index: int
    ok: bool
    message: str
    path: str


def _file_for(root: Path, rule: Rule, kind: str, index: int, example: Example) -> Path:
    name = example.name or DEFAULT_NAME
    if not re.fullmatch(r"[\w.\- ]{1,100}", name) or name.startswith("."):
        name = DEFAULT_NAME
    return root / rule.id / f"{kind}-{index}" / name


def run_examples(
    rules: RuleSet, ingest: IngestFn, workdir: Path, only: Sequence[str] | None = None
) -> list[ExampleResult]:
    """Parse and evaluate every example of the active rules (or of the rules ``only`` names)."""
    chosen = [r for r in rules.active if only is None or r.id in only]
    files: list[tuple[Rule, str, int, Path]] = []
    source = workdir / "examples"
    for rule in chosen:
        for kind, items in (("match", rule.examples.match), ("no_match", rule.examples.no_match)):
            for i, example in enumerate(items):
                path = _file_for(source, rule, kind, i, example)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(example.render(rules.headers.get(rule.id, {})), encoding="utf-8")
                files.append((rule, kind, i, path))
    if not files:
        return []
    wh = Warehouse(workdir / "warehouse", merge_copies=False)  # each example stands alone
    ingest(wh, [source])
    rows, reasons = _rows_per_file(wh)
    evaluator = Evaluator(wh, rules)
    results = []
    for rule, kind, i, path in files:
        where = str(path)
        landed = rows.get(where, {})
        if landed.get(rule.table, 0) == 0:
            elsewhere = ", ".join(f"{t}: {n}" for t, n in sorted(landed.items())) or "nothing"
            if where in reasons:
                elsewhere += f"; reject reason: {reasons[where]}"
            results.append(
                ExampleResult(
                    rule.id,
                    kind,
                    i,
                    False,
                    f"did not parse into table {rule.table} (it gave {elsewhere})",
                    where,
                )
            )
            continue
        tables = [rule.table]
        if rule.correlate is not None:
            tables.append(rules.get(rule.correlate.followed_by).table)
        runs = evaluator.evaluate(tables, write=False, rescan=True, source_files=[where], only=[rule.id])
        fired = sum(1 for run in runs for hit in run.hits if hit["rule_id"] == rule.id)
        ok = (fired > 0) == (kind == "match")
        if ok:
            message = "matched" if fired else "did not match, as expected"
        elif kind == "match":
            message = f"did not match ({landed[rule.table]} row(s) in {rule.table})"
        else:
            message = "matched, but must not"
        results.append(ExampleResult(rule.id, kind, i, ok, message, where))
    return results


def _rows_per_file(wh: Warehouse) -> tuple[dict[str, dict[str, int]], dict[str, str]]:
    """source_file -> table -> row count (``rejects`` included), and each file's first reject reason."""
    counts: dict[str, dict[str, int]] = {}
    reasons: dict[str, str] = {}
    con = connect(wh)
    try:
        if wh.has_table("rejects"):
            query = "SELECT source_file, min_by(reason, source_offset) FROM rejects GROUP BY 1"
            reasons = dict(con.execute(query).fetchall())
        for table in wh.table_names():
            if table in ("files", "hits"):
                continue
            query = f'SELECT source_file, count(*) FROM "{table}" GROUP BY 1'  # names from the warehouse
            for path, n in con.execute(query).fetchall():
                counts.setdefault(path, {})[table] = n
    finally:
        con.close()
    return counts, reasons

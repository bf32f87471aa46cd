"""``./dev bench rules``: one rule against the whole library over the same 2 M-row ``smtp`` table.

The table is made the way users make it: a generated SMTP send log (``bench.smtp_ingest``'s
generator: realistic sessions, a few percent of them failing) ingested into a scratch warehouse
in a temp dir. Then, in the same process and alternately (best of three each), the rule engine
evaluates that table from the start with

* one rule (``exchange-tls-unknown-credentials``), and
* every rule of the library over ``smtp``,

and prints both times, rows/s and the ratio (target: the library costs at most 3x one rule,
because all rules share one scan and one RE2 prefilter pass per column).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.smtp_ingest import LINES, generate
from ingest.backfill import ingest_paths
from rules.evaluator import Evaluator, TableRun
from rules.loader import RuleSet, load_rules
from warehouse.store import Warehouse

ONE_RULE = "exchange-tls-unknown-credentials"
ROUNDS = 3


def _timed(wh: Warehouse, rules: RuleSet) -> tuple[float, TableRun]:
    start = time.perf_counter()
    runs = Evaluator(wh, rules).evaluate(["smtp"], write=False, rescan=True)
    elapsed = time.perf_counter() - start
    return elapsed, runs[0]


def main() -> None:
    library = load_rules()
    library.raise_for_problems()
    one = RuleSet(rules=[library.get(ONE_RULE)], headers=library.headers, schemas=library.schemas)
    smtp_rules = [r for r in library.active if r.table == "smtp"]
    whole = RuleSet(rules=smtp_rules, headers=library.headers, schemas=library.schemas)
    with tempfile.TemporaryDirectory(prefix="knownfix-bench-rules-") as tmp:
        log = Path(tmp) / "SEND20160719-1.LOG"
        t = time.perf_counter()
        size = generate(log, LINES)
        wh = Warehouse(Path(tmp) / "wh")
        stats = ingest_paths(wh, [log])
        rows = stats.rows.get("smtp", 0)
        print(f"setup: {size / 1e6:.0f} MB log -> {rows:,} smtp rows in {time.perf_counter() - t:.1f} s")
        best: dict[str, float] = {"one": float("inf"), "all": float("inf")}
        last: dict[str, TableRun] = {}
        for _ in range(ROUNDS):
            for name, rules in (("one", one), ("all", whole)):
                seconds, run = _timed(wh, rules)
                best[name] = min(best[name], seconds)
                last[name] = run
    for name, label in (("one", f"1 rule ({ONE_RULE})"), ("all", f"library ({len(smtp_rules)} smtp rules)")):
        run = last[name]
        print(
            f"{label}: {best[name]:.2f} s, {rows / best[name] / 1e6:.2f} M rows/s, "
            f"{run.candidates:,} candidate rows, {len(run.hits):,} hits"
        )
    print(f"ratio library / one rule: {best['all'] / best['one']:.2f}x (target <= 3x)")

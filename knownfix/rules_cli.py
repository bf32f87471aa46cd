"""``knownfix rules list|lint|test|explain|run`` and ``knownfix hits``.

The rule engine raises ``RuleError``; this module turns it into ``KnownfixError`` (one line, no
traceback) and is the only place that knows both the engine and the ingest path that
``rules test`` drives its examples through.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from knownfix import output
from knownfix.context import Context, open_context
from knownfix.errors import KnownfixError
from knownfix.options import ConfigOpt, FormatOpt, WarehouseOpt
from rules.errors import RuleError
from warehouse.lock import WriterLock

if TYPE_CHECKING:
    from ingest.backfill import CommitHook
    from rules.loader import RuleSet
    from rules.model import Rule
    from warehouse.commit import CommitSummary
    from warehouse.store import Warehouse

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
rules_app = typer.Typer(
    help="The signature rules: list, lint, test their examples, explain their SQL.", no_args_is_help=True
)

PathsArg = Annotated[
    list[Path] | None,
    typer.Argument(help="Extra rule files or folders (besides the library and the config's rules:)."),
]


def _load(ctx: Context, paths: list[Path] | None, *, strict: bool = True) -> RuleSet:
    """The library, the config's ``rules:`` and ``paths``; with ``strict`` a problem stops here."""
    from rules.loader import load_rules

    rs = load_rules([*ctx.config.rules, *(paths or [])])
    if strict and rs.problems:
        try:
            rs.raise_for_problems()
        except RuleError as exc:
            raise KnownfixError(str(exc)) from None
    return rs


def evaluation_hook(ctx: Context) -> CommitHook | None:
    """What ingest runs after each commit: evaluate the rules over the tables it wrote.

    An evaluation failure is reported and ingest goes on: the rows are committed, the watermark
    did not move, so the next commit (or ``knownfix rules run``) evaluates them again.
    """
    from rules.evaluator import Evaluator
    from warehouse.hits import HITS_TABLE

    rs = _load(ctx, None)
    if not rs.active:
        return None
    evaluator = Evaluator(ctx.warehouse, rs)
    not_rule_tables = ("files", "rejects", HITS_TABLE)  # written by the pipeline itself

    def hook(summary: CommitSummary) -> None:
        tables = [t for t in summary.versions if t not in not_rule_tables]
        try:
            evaluator.evaluate(tables)
        except RuleError as exc:
            err.print(
                f"[yellow]warning[/yellow]: {escape(str(exc))}; run `knownfix rules run` to retry",
                highlight=False,
            )

    return hook


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _shape(rule: Rule) -> str:
    if rule.threshold is not None:
        t = rule.threshold
        what = f"distinct {t.distinct}" if t.distinct else "rows"
        return f">= {t.count} {what} in {_duration(t.window)}"
    if rule.correlate is not None:
        return f"then {rule.correlate.followed_by} within {_duration(rule.correlate.within)}"
    return "each match"


@rules_app.command("list")
def list_rules(
    paths: PathsArg = None,
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    table: Annotated[str | None, typer.Option(help="Only rules over this table.")] = None,
    fmt: FormatOpt = output.Format.table,
) -> None:
    """List the loaded rules: id, table, severity, kind, what fires them, and their title."""
    import pyarrow as pa

    rs = _load(open_context(warehouse, config), paths)
    waiting = {i for ids in rs.waiting.values() for i in ids}
    rows = [
        {
            "id": r.id,
            "table": r.table,
            "severity": str(r.severity),
            "kind": r.kind,
            "fires on": _shape(r),
            "status": "waiting for parser" if r.id in waiting else "active",
            "title": r.title,
        }
        for r in rs.rules
        if table is None or r.table == table
    ]
    output.emit(
        pa.Table.from_pylist(rows) if rows else pa.table({"id": pa.array([], pa.string())}), fmt, None
    )


@rules_app.command()
def lint(paths: PathsArg = None, warehouse: WarehouseOpt = None, config: ConfigOpt = None) -> None:
    """Check every rule file and report every problem (file:line and what to change)."""
    rs = _load(open_context(warehouse, config), paths, strict=False)
    for problem in rs.problems:
        err.print(f"[red]error[/red]: {escape(str(problem))}", highlight=False, soft_wrap=True)
    for table, ids in sorted(rs.waiting.items()):
        err.print(
            f"[yellow]waiting[/yellow]: table {table} has no parser yet: {', '.join(ids)}", highlight=False
        )
    if rs.problems:
        raise typer.Exit(1)
    err.print(f"{len(rs.rules)} rules ok ({len(rs.active)} active)")


@rules_app.command()
def test(
    paths: PathsArg = None,
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    rule: Annotated[
        list[str] | None, typer.Option("--rule", "-r", help="Only this rule (repeatable).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show passing examples too.")] = False,
) -> None:
    """Parse each rule's examples with the real parsers and check which must and must not match."""
    from ingest.backfill import ingest_paths
    from parsers.base import ParseOptions
    from rules.examples import run_examples

    ctx = open_context(warehouse, config)
    rs = _load(ctx, paths)
    for rule_id in rule or []:
        try:
            rs.get(rule_id)
        except RuleError as exc:
            raise KnownfixError(str(exc)) from None
    options = ctx.parse_options()

    def ingest(wh: Warehouse, files: list[Path]) -> None:
        ingest_paths(wh, files, options=options or ParseOptions())

    with tempfile.TemporaryDirectory(prefix="knownfix-rules-test-") as tmp:
        try:
            results = run_examples(rs, ingest, Path(tmp), only=rule)
        except RuleError as exc:
            raise KnownfixError(str(exc)) from None
        failed = [r for r in results if not r.ok]
        for r in results:
            if verbose or not r.ok:
                mark = "[green]ok[/green]  " if r.ok else "[red]FAIL[/red]"
                label = "must match" if r.kind == "match" else "must not match"
                console.print(
                    f"{mark} {r.rule_id} example {r.index + 1} ({label}): {escape(r.message)}",
                    highlight=False,
                )
    for table, ids in sorted(rs.waiting.items()):
        console.print(
            f"[yellow]waiting[/yellow] table {table} has no parser yet; not tested: {', '.join(ids)}"
        )
    tested = len({r.rule_id for r in results})
    console.print(f"{len(results) - len(failed)} of {len(results)} examples passed ({tested} rules)")
    if failed:
        raise typer.Exit(1)


@rules_app.command()
def explain(
    rule_id: Annotated[str, typer.Argument(help="The rule's id.")],
    paths: PathsArg = None,
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Print a rule, the SQL it compiles to, and the prefilter that narrows the scan."""
    from rules.compiler import compile_condition, needle, prefilter, pretty, rule_query

    rs = _load(open_context(warehouse, config), paths)
    try:
        rule = rs.get(rule_id)
    except RuleError as exc:
        raise KnownfixError(str(exc)) from None
    console.print(
        f"[bold]{escape(rule.id)}[/bold]: {escape(rule.title)} ({rule.severity}, {rule.kind}, {rule.origin})"
    )
    schema = rs.schemas.get(rule.id)
    if schema is None:
        console.print(f"table {rule.table} has no parser yet, so the rule cannot be compiled")
        return
    console.print(
        f"fires on: {_shape(rule)}" + (f"; grouped by {', '.join(rule.group_by)}" if rule.group_by else "")
    )
    console.print("\n-- every matching row:", highlight=False)
    console.print(pretty(rule_query(rule.table, rule.match, schema)) + ";", highlight=False, markup=False)
    console.print("\n-- the exact test, computed on the candidates of the one scan:", highlight=False)
    console.print(pretty(compile_condition(rule.match, schema)), highlight=False, markup=False)
    found = needle(rule.match, schema)
    console.print(
        "\n-- prefilter (folded with every other rule's into one RE2 pass per column):", highlight=False
    )
    note = "" if found is not None else "  -- none derivable: this rule's exact test runs on every new row"
    console.print(pretty(prefilter([rule.match], schema)) + note, highlight=False, markup=False)


@rules_app.command("run")
def run_rules(
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    rescan: Annotated[
        bool, typer.Option(help="Evaluate every row again (stored hits are not repeated).")
    ] = False,
) -> None:
    """Evaluate the rules over rows not evaluated yet (ingest does this after every commit)."""
    from rules.evaluator import Evaluator

    ctx = open_context(warehouse, config)
    rs = _load(ctx, None)
    with WriterLock(ctx.warehouse.root):
        try:
            runs = Evaluator(ctx.warehouse, rs).evaluate(rescan=rescan)
        except RuleError as exc:
            raise KnownfixError(str(exc)) from None
    for r in runs:
        start = "the start" if r.after_version is None else f"version {r.after_version}"
        err.print(
            f"{r.table}: from {start} to {r.to_version}, {r.candidates} candidate rows, {r.written} new hits"
        )
    if not runs:
        err.print("nothing new to evaluate")


def hits(
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    rule: Annotated[str | None, typer.Option("--rule", "-r", help="Only hits of this rule.")] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many (most recent first).")] = 20,
    fmt: FormatOpt = output.Format.table,
    out: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write csv/parquet to this file.")
    ] = None,
) -> None:
    """Recent hits of the rules, each with its documented fix (table or JSON)."""
    from warehouse.hits import HITS_TABLE
    from warehouse.query import run

    ctx = open_context(warehouse, config)
    if not ctx.warehouse.has_table(HITS_TABLE):
        err.print("no hits yet: ingest logs first (rules run after every ingest)")
        return
    where = "WHERE rule_id = ?" if rule else ""
    sql = f"SELECT * EXCLUDE (_version) FROM hits {where} ORDER BY detected_at DESC, last_seen DESC LIMIT ?"
    result = run(ctx.warehouse, sql, [rule, limit] if rule else [limit])
    if fmt is output.Format.json:
        for row in result.to_pylist():
            row["fix"] = json.loads(row.pop("fix_json")) if row.get("fix_json") else None
            sys.stdout.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
        return
    if fmt is not output.Format.table:
        output.emit(result, fmt, out)
        return
    for row in result.to_pylist():
        _print_hit(row)
    console.print(f"[dim]{result.num_rows} hit{'s' if result.num_rows != 1 else ''}[/dim]")


def show_found(ctx: Context) -> int:
    """What the rules found, one card per rule (its latest hit) with the fix; for ``knownfix demo``.

    Returns the number of rules that fired.
    """
    from warehouse.hits import HITS_TABLE
    from warehouse.query import run

    if not ctx.warehouse.has_table(HITS_TABLE):
        console.print("no rule fired")
        return 0
    sql = (
        "SELECT * EXCLUDE (_version, rn) FROM (SELECT *, row_number() OVER "
        "(PARTITION BY rule_id ORDER BY detected_at DESC, last_seen DESC) AS rn FROM hits) "
        "WHERE rn = 1 ORDER BY severity = 'critical' DESC, severity = 'high' DESC, rule_id"
    )
    rows = run(ctx.warehouse, sql).to_pylist()
    for row in rows:
        _print_hit(row)
    console.print(f"[dim]{len(rows)} signatures found; `knownfix hits` lists every hit[/dim]")
    return len(rows)


def _print_hit(row: dict[str, Any]) -> None:
    when = f"{row['first_seen']} .. {row['last_seen']}" if row["first_seen"] else "no time"
    group = f" [{escape(row['group_key'])}]" if row["group_key"] else ""
    console.rule(f"[bold]{escape(row['rule_title'])}[/bold]{group}", align="left")
    console.print(
        f"{row['severity']} {row['kind']} {row['rule_id']}: {row['count']} × in {row['table_name']}, {when}",
        highlight=False,
    )
    for s in row["samples"][:3]:
        console.print(
            f"  {escape(s['source_file'])}:{s['line_number']} {escape((s['text'] or '')[:200])}",
            highlight=False,
        )
    fix = json.loads(row["fix_json"]) if row.get("fix_json") else None
    if fix is None:
        console.print("  detection only (no documented fix)")
        return
    console.print(f"  [bold]fix[/bold]: {escape(fix['summary'])}")
    for n, cause in enumerate(fix["causes"], 1):
        console.print(f"  {n}. {escape(cause['cause'])}")
        console.print(f"     check: {escape(cause['check'])}")
        for step in cause["steps"]:
            console.print(f"     - {escape(step)}")
        for command in cause["commands"]:
            console.print(f"     $ {escape(command)}", highlight=False)
    if row["references"]:
        console.print(f"  references: {escape(', '.join(row['references']))}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")
    app.command("hits")(hits)

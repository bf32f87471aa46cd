"""The demo: ingest the bundled samples, then show tables, rejects, the failures recognised with
their documented fixes, and the tickets opened for them (in the local folder sink by default)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from knownfix import output
from knownfix.context import Context
from warehouse.query import run

console = Console()


def run_demo(ctx: Context, path: Path) -> None:
    from knownfix.cli import ingest_with_progress, report_ingest
    from knownfix.rules_cli import show_found
    from knownfix.tickets_cli import make_dispatcher, summary

    console.rule(f"[bold]1. ingest {path} into {ctx.warehouse.root}[/bold]", align="left")
    stats = ingest_with_progress(ctx, [path])
    report_ingest(stats)

    console.rule("[bold]2. tables (knownfix tables)[/bold]", align="left")
    output.emit(output.describe_tables(ctx.warehouse), output.Format.table, None)

    if ctx.warehouse.has_table("rejects"):
        console.rule("[bold]3. what could not be parsed (knownfix rejects)[/bold]", align="left")
        sql = "select source_file, line_number, reason from rejects order by 1, 2 limit 8"
        output.emit(run(ctx.warehouse, sql), output.Format.table, None)

    console.rule("[bold]4. known failures recognised, with their fixes (knownfix hits)[/bold]", align="left")
    show_found(ctx)

    console.rule("[bold]5. tickets (knownfix tickets dispatch)[/bold]", align="left")
    dispatcher = make_dispatcher(ctx)
    try:
        report = dispatcher.run_once()
    finally:
        dispatcher.close()
    for line in summary(report):
        console.print(line, markup=False, highlight=False)
    folder = ctx.warehouse.root / "tickets"
    if folder.is_dir():
        tickets = sorted(folder.glob("*.md"))
        console.print(f"{len(tickets)} ticket files in {folder}, e.g. {tickets[0] if tickets else '-'}")
    console.print(
        '\nnext: knownfix query "select remote_endpoint, tls_error, count(*) from smtp '
        'where tls_error is not null group by all"',
        markup=False,
        highlight=False,
    )

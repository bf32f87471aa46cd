"""The demo: ingest the bundled samples, then show tables, rejects and what was recognised."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from knownfix import output
from knownfix.context import Context

console = Console()


def run_demo(ctx: Context, path: Path) -> None:
    from knownfix.cli import ingest_with_progress, report_ingest

    console.rule(f"knownfix demo: ingesting {path} into {ctx.warehouse.root}")
    stats = ingest_with_progress(ctx, [path])
    report_ingest(stats)
    console.rule("tables")
    output.emit(output.describe_tables(ctx.warehouse), output.Format.table, None)

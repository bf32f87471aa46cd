"""The command line: the only module that knows every package and the CLI library.

Library code raises ``KnownfixError`` / ``WarehouseError``; ``main`` turns them into one line on
stderr and an exit code, never a traceback.

Building the app imports only typer, rich and the cheap ``knownfix`` modules: ``--help`` and
argument errors answer at once, and each command imports the parsers, Arrow, DuckDB or Delta
Lake it needs when it runs (tests/cli/test_startup.py keeps it so).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from knownfix import output
from knownfix.context import Context, open_context
from knownfix.errors import ConfigError, KnownfixError
from knownfix.options import ConfigOpt, FormatOpt, WarehouseOpt
from warehouse.errors import WarehouseError
from warehouse.lock import WriterLock

if TYPE_CHECKING:
    from ingest.backfill import IngestStats

app = typer.Typer(
    name="knownfix",
    help="Parse Exchange, Windows and Azure AD Connect logs into a SQL warehouse, recognise known "
    "failures and open tickets that carry the documented fix.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True)


def ingest_with_progress(ctx: Context, paths: list[Path], *, quiet: bool = False) -> IngestStats:
    """Backfill ``paths`` under the writer lock, with a progress bar on a terminal."""
    from ingest.backfill import ingest_paths, walk

    for p in paths:
        if not p.exists():
            raise KnownfixError(f"path {p} does not exist; give a log file or a folder of logs")
    total = sum(f.stat().st_size for f in walk(paths) if f.is_file())
    hook = ctx.after_commit()
    with WriterLock(ctx.warehouse.root):
        if quiet or not err.is_terminal:
            return ingest_paths(ctx.warehouse, paths, after_commit=hook, options=ctx.parse_options())
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        columns = (
            TextColumn("ingesting"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task("ingest", total=total)
            return ingest_paths(
                ctx.warehouse,
                paths,
                progress=lambda n: bar.advance(task, n),
                after_commit=hook,
                options=ctx.parse_options(),
            )


def report_ingest(stats: IngestStats) -> None:
    tables = ", ".join(f"{t} {n:,}" for t, n in sorted(stats.rows.items())) or "no new rows"
    err.print(
        f"read {stats.files_read} of {stats.files_seen} files, {stats.bytes_read:,} bytes, "
        f"{stats.records_read:,} records -> {stats.row_count:,} rows ({tables}), {stats.rejects:,} rejects"
    )
    if stats.duplicates:
        err.print(
            f"{stats.duplicates:,} records were already in the warehouse from another file "
            "(the same events exported again) and were not added twice"
        )
    for s in stats.skipped:
        err.print(f"[dim]skipped {s.path}: {s.reason}[/dim]")
    for s in stats.unreadable:
        err.print(f"[red]error[/red]: {s.path}: {s.reason}; check its permissions and run ingest again")


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Log files or folders (read recursively).")],
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    timezone: Annotated[
        str | None,
        typer.Option(
            "--timezone",
            help="IANA zone of exports written in local time (Event Viewer CSV/TXT); overrides the config.",
        ),
    ] = None,
) -> None:
    """Read log files once into the warehouse (re-running adds only what is new)."""
    from knownfix.config import check_timezone

    ctx = open_context(warehouse, config)
    if timezone is not None:
        try:
            ctx.config.timezone = check_timezone(timezone)
        except ValueError as exc:
            raise ConfigError(f"--timezone: {exc}") from None
    stats = ingest_with_progress(ctx, paths, quiet=quiet)
    report_ingest(stats)
    if stats.unreadable:
        raise typer.Exit(1)


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL (DuckDB dialect) over the warehouse tables.")],
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    fmt: FormatOpt = output.Format.table,
    out: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (required for parquet).")
    ] = None,
) -> None:
    """Ask the warehouse a SQL question; works while another knownfix process is writing."""
    from warehouse.query import run

    ctx = open_context(warehouse, config)
    output.emit(run(ctx.warehouse, sql), fmt, out)


@app.command()
def tables(
    warehouse: WarehouseOpt = None, config: ConfigOpt = None, fmt: FormatOpt = output.Format.table
) -> None:
    """List the tables, their row counts and columns."""
    ctx = open_context(warehouse, config)
    output.emit(output.describe_tables(ctx.warehouse), fmt, None)


@app.command()
def rejects(
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    fmt: FormatOpt = output.Format.table,
    limit: Annotated[int, typer.Option(help="Show at most this many.")] = 50,
) -> None:
    """What could not be parsed, with file, line, offset and reason."""
    from warehouse.query import run

    ctx = open_context(warehouse, config)
    if "rejects" not in ctx.warehouse.table_names():
        err.print("no rejects: every line read so far became a row")
        return
    sql = (
        "select source_file, line_number, source_offset, format, reason, raw from rejects "
        "order by source_file, source_offset limit ?"
    )
    output.emit(run(ctx.warehouse, sql, [limit]), fmt, None)


@app.command()
def demo(
    path: Annotated[Path, typer.Argument(help="Folder of sample logs.")] = Path("sample_logs"),
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Ingest the bundled samples and show what knownfix found in them."""
    from knownfix.demo import run_demo

    run_demo(open_context(warehouse, config), path)


def _register_command_groups() -> None:
    """Command groups that live in their own modules (rules, tickets, tail, identity)."""
    from knownfix import commands

    for register in commands.REGISTRARS:
        register(app)


_register_command_groups()


def main() -> None:
    try:
        app(standalone_mode=True)
    except (KnownfixError, WarehouseError) as exc:
        err.print(f"[red]error[/red]: {exc}", highlight=False, soft_wrap=True)
        sys.exit(getattr(exc, "exit_code", 1))


if __name__ == "__main__":
    main()

"""``knownfix tail PATH...`` (follow log folders for weeks) and ``knownfix status [--json]``.

``tail`` holds the warehouse's writer lock, logs JSON lines of its own, and stops cleanly on
SIGINT/SIGTERM: the batch it has read is committed first, so a restart resumes exactly there.
"""

from __future__ import annotations

import enum
import json
import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ingest.logs import EventLog, setup_logging
from ingest.status import read_status
from knownfix.context import Context, open_context
from knownfix.errors import ConfigError, KnownfixError
from knownfix.options import ConfigOpt, WarehouseOpt
from knownfix.tickets_cli import make_dispatcher, summary
from warehouse.lock import WriterLock

if TYPE_CHECKING:
    from pydantic import ValidationError

    from ingest.backfill import CommitHook
    from ingest.settings import SourceConfig, TailConfig
    from tickets.background import BackgroundDispatch
    from tickets.dispatch import DispatchReport
    from warehouse.commit import CommitSummary

console = Console()


#: Exit code of ``status`` when no tailer is running (as ``systemctl status`` does).
NOT_RUNNING = 3


class ObserverChoice(enum.StrEnum):
    auto = "auto"
    native = "native"
    polling = "polling"


class StartChoice(enum.StrEnum):
    beginning = "beginning"
    end = "end"


def _problems(exc: ValidationError, section: str) -> str:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"])
        parts.append(f"{section}.{loc}: {e['msg']}" if loc else f"{section}: {e['msg']}")
    return "; ".join(parts)


def build_sources(ctx: Context, paths: list[Path] | None, overrides: dict[str, Any]) -> list[SourceConfig]:
    """The sources to follow: PATHs with the options given, else the config's ``sources:``."""
    from pydantic import ValidationError

    from ingest.settings import SourceConfig

    if paths:
        raw = [{"path": p, **overrides} for p in paths]
    else:
        raw = [{**s.model_dump(exclude_unset=True), **overrides} for s in ctx.config.sources]
    if not raw:
        raise KnownfixError(
            "nothing to follow: give folders or files (knownfix tail PATH...) or `sources:` in the config"
        )
    try:
        sources = [SourceConfig.model_validate(r) for r in raw]
    except ValidationError as exc:
        raise ConfigError(_problems(exc, "sources")) from None
    for s in sources:
        if not s.path.exists():
            raise KnownfixError(
                f"path {s.path} does not exist; give a log folder or file (a share must be mounted)"
            )
    return sources


def build_settings(ctx: Context, overrides: dict[str, Any]) -> TailConfig:
    from pydantic import ValidationError

    from ingest.settings import TailConfig

    try:
        return TailConfig.model_validate({**ctx.config.tail.model_dump(exclude_unset=True), **overrides})
    except ValidationError as exc:
        raise ConfigError(_problems(exc, "tail")) from None


def tail(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Log folders or files to follow (default: the config's sources:)."),
    ] = None,
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    observer: Annotated[
        ObserverChoice | None,
        typer.Option(help="auto (from the file system), native (inotify) or polling (SMB/CIFS, NFS)."),
    ] = None,
    interval: Annotated[float | None, typer.Option(help="Polling interval in seconds.")] = None,
    include: Annotated[list[str] | None, typer.Option(help="Glob of files to read (repeatable).")] = None,
    exclude: Annotated[
        list[str] | None, typer.Option(help="Glob of files to leave out (repeatable).")
    ] = None,
    recursive: Annotated[
        bool | None, typer.Option("--recursive/--no-recursive", help="Descend into folders.")
    ] = None,
    start_position: Annotated[
        StartChoice | None, typer.Option(help="Where to start in files present at the first start.")
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="Force a format instead of detecting it.")
    ] = None,
    max_open_files: Annotated[int | None, typer.Option(help="Files kept open at once.")] = None,
    log_file: Annotated[
        Path | None, typer.Option(help="Write the JSON-lines log here (default: stderr).")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error.")] = None,
    tickets: Annotated[
        bool, typer.Option("--tickets/--no-tickets", help="Send rule hits to the configured ticket sinks.")
    ] = True,
) -> None:
    """Follow log folders into the warehouse until stopped (rotation, truncation and restarts safe).

    Rules run after every commit and new hits go out as tickets from a background thread, so a
    failure line written to a followed file becomes a ticket within seconds.
    """
    from ingest.tail import Tailer
    from parsers.registry import UnknownFormatError

    ctx = open_context(warehouse, config)
    given = {
        "observer": observer.value if observer else None,
        "poll_interval": interval,
        "include": include or None,
        "exclude": exclude or None,
        "recursive": recursive,
        "start_position": start_position.value if start_position else None,
        "format": fmt,
    }
    sources = build_sources(ctx, paths, {k: v for k, v in given.items() if v is not None})
    tuned = {"max_open_files": max_open_files, "log_file": log_file, "log_level": log_level}
    settings = build_settings(ctx, {k: v for k, v in tuned.items() if v is not None})
    log = setup_logging(settings.log_file, settings.log_level)
    sender = _ticket_sender(ctx, log) if tickets else None
    try:
        tailer = Tailer(
            ctx.warehouse,
            sources,
            settings,
            after_commit=_then_wake(ctx.after_commit(), sender),
            options=ctx.parse_options(),
            log=log,
        )
    except UnknownFormatError as exc:
        raise ConfigError(str(exc)) from None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        tailer.request_stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    with WriterLock(ctx.warehouse.root):
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        if sender is not None:
            sender.start()
        try:
            tailer.run()
        finally:
            if sender is not None:
                sender.stop()
                sender.dispatcher.close()


def _ticket_sender(ctx: Context, log: EventLog) -> BackgroundDispatch:
    """Ticket passes in their own thread: ingestion never waits for a slow tracker."""
    from tickets.background import BackgroundDispatch

    def reported(report: DispatchReport) -> None:
        for line in summary(report) if report.outcomes or report.down else []:
            log.info("tickets", summary=line)

    def failed(exc: Exception) -> None:
        log.error("tickets_failed", error=str(exc))

    return BackgroundDispatch(make_dispatcher(ctx), on_report=reported, on_error=failed)


def _then_wake(hook: CommitHook | None, sender: BackgroundDispatch | None) -> CommitHook | None:
    """After the rules ran on a commit, wake the ticket sender to send what they found."""
    if sender is None:
        return hook

    def both(commit_summary: CommitSummary) -> None:
        if hook is not None:
            hook(commit_summary)
        sender.wake()

    return both


def _state(doc: dict[str, Any]) -> str:
    if doc.get("alive"):
        return "running"
    return "stopped" if not doc.get("running") else "not running (the process ended without stopping)"


def status(
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="The whole status document as JSON.")] = False,
) -> None:
    """What `knownfix tail` is doing: files followed, offsets and lag, rows/s, last commit and error."""
    ctx = open_context(warehouse, config)
    doc = read_status(ctx.warehouse.root / "state")
    if doc is None:
        raise KnownfixError(
            f"no tailer has run on warehouse {ctx.warehouse.root}; start one with `knownfix tail PATH`"
        )
    doc["state"] = _state(doc)
    if as_json:
        typer.echo(json.dumps(doc, indent=2, default=str))
    else:
        _show(doc)
    if not doc["alive"]:
        raise typer.Exit(NOT_RUNNING)


def _show(doc: dict[str, Any]) -> None:
    totals = doc.get("totals") or {}
    console.print(
        f"[bold]{escape(doc['state'])}[/bold] (pid {doc.get('pid')}), warehouse {escape(str(doc.get('warehouse')))}, "
        f"updated {doc.get('updated_at')}"
    )
    for s in doc.get("sources") or []:
        every = f" every {s['poll_interval']}s" if s.get("poll_interval") else ""
        console.print(f"  source {escape(s['path'])}: {s['observer']}{every}")
    console.print(
        f"  {totals.get('rows', 0):,} rows, {totals.get('rejects', 0):,} rejects, {totals.get('commits', 0):,} "
        f"commits; {doc.get('rows_per_s', 0)} rows/s; lag {doc.get('lag_bytes', 0):,} bytes"
    )
    last = doc.get("last_commit")
    if last:
        console.print(f"  last commit {last['at']}: {last['rows']} rows, {last.get('duration_ms')} ms")
    error = doc.get("last_error")
    if error:
        console.print(f"  [red]last error[/red] {error['at']}: {escape(str(error['message']))}")
    table = Table("file", "state", "offset", "size", "lag", "note")
    for f in doc.get("files") or []:
        table.add_row(
            escape(f["path"]),
            f["state"],
            "" if f.get("offset") is None else f"{f['offset']:,}",
            "" if f.get("size") is None else f"{f['size']:,}",
            "" if f.get("lag_bytes") is None else f"{f['lag_bytes']:,}",
            escape(f.get("note") or ""),
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("tail")(tail)
    app.command("status")(status)

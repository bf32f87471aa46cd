"""``knownfix tickets …``: dispatch hits to the configured trackers, list deliveries, retry failures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from knownfix import output
from knownfix.context import Context, open_context
from knownfix.errors import ConfigError, KnownfixError
from knownfix.options import ConfigOpt, WarehouseOpt
from tickets.errors import SinkConfigError, TicketError

if TYPE_CHECKING:
    import pyarrow as pa

    from tickets.clock import Clock
    from tickets.dispatch import Dispatcher, DispatchReport

err = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)


def make_dispatcher(ctx: Context, clock: Clock | None = None) -> Dispatcher:
    """The dispatcher of the configured sinks (the folder sink when none); for ``tail`` too."""
    from tickets.dispatch import Dispatcher
    from tickets.registry import build_sinks

    with ticket_errors():
        sinks = build_sinks(ctx.config.sinks, ctx.warehouse.root, clock)
        return Dispatcher(ctx.warehouse, ctx.config.tickets, sinks, clock=clock)


@contextmanager
def ticket_errors() -> Iterator[None]:
    """Library errors of ``tickets`` become the one-line errors the CLI prints."""
    try:
        yield
    except SinkConfigError as exc:
        raise ConfigError(str(exc)) from None
    except TicketError as exc:
        raise KnownfixError(str(exc)) from None


def summary(report: DispatchReport) -> list[str]:
    """One line per sink that did something, plus the reasons of failures."""
    lines = [f"{report.absorbed} new hit{'s' if report.absorbed != 1 else ''} read"]
    by_sink: dict[str, dict[str, int]] = {}
    for o in report.outcomes:
        by_sink.setdefault(o.sink, {}).setdefault(o.action, 0)
        by_sink[o.sink][o.action] += 1
    for sink, counts in by_sink.items():
        lines.append(f"{sink}: " + ", ".join(f"{n} {action}" for action, n in sorted(counts.items())))
    for o in report.outcomes:
        if o.action == "dead":
            lines.append(f"failed for good: {o.sink} {o.dedup_key}: {o.detail}")
    for sink, reason in report.down.items():
        lines.append(f"{sink} is unavailable, will retry: {reason}")
    return lines


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Turn rule hits into tickets: dispatch, list, retry.", no_args_is_help=True)
    app.add_typer(group, name="tickets")

    @group.command("dispatch")
    def dispatch(
        warehouse: WarehouseOpt = None,
        config: ConfigOpt = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Print what would be sent; send and record nothing.")
        ] = False,
    ) -> None:
        """Send new rule hits to the configured trackers (one ticket per dedup key, updated)."""
        ctx = open_context(warehouse, config)
        dispatcher = make_dispatcher(ctx)
        try:
            with ticket_errors():
                report = dispatcher.run_once(dry_run=dry_run)
        finally:
            dispatcher.close()
        if dry_run:
            for sink, action, msg in report.previews:
                out.rule(f"{sink}: {action} ({msg.kind}, {msg.incident.dedup_key})")
                out.print(f"title: {msg.title}\n")
                out.print(msg.body, markup=False)
            if not report.previews:
                out.print("nothing to send")
        for line in summary(report):
            err.print(line, markup=False, highlight=False)
        if not report.ok:
            err.print("see: knownfix tickets list --failed", markup=False)
            raise typer.Exit(1)

    @group.command("list")
    def list_(
        warehouse: WarehouseOpt = None,
        config: ConfigOpt = None,
        failed: Annotated[
            bool,
            typer.Option(
                "--failed", help="Only deliveries that failed (dead-letter or retrying), with the reason."
            ),
        ] = False,
        fmt: Annotated[output.Format, typer.Option("--format", "-f", help="table, csv, json or parquet.")] = (
            output.Format.table
        ),
    ) -> None:
        """Tickets per dedup key and sink: remote id, state, count, last update, failures."""
        ctx = open_context(warehouse, config)
        output.emit(deliveries_table(ctx, failed=failed), fmt, None)

    @group.command("retry")
    def retry(
        warehouse: WarehouseOpt = None,
        config: ConfigOpt = None,
        sink: Annotated[str | None, typer.Option(help="Only this sink.")] = None,
        key: Annotated[str | None, typer.Option(help="Only this dedup key.")] = None,
    ) -> None:
        """Resend what failed for good (dead-letter), e.g. after fixing a token or a project name."""
        ctx = open_context(warehouse, config)
        dispatcher = make_dispatcher(ctx)
        try:
            with ticket_errors():
                n = dispatcher.retry(sink, key)
                err.print(f"{n} failed deliver{'ies' if n != 1 else 'y'} queued again", markup=False)
                report = dispatcher.run_once()
        finally:
            dispatcher.close()
        for line in summary(report):
            err.print(line, markup=False, highlight=False)
        if not report.ok:
            raise typer.Exit(1)


def deliveries_table(ctx: Context, *, failed: bool) -> pa.Table:
    import pyarrow as pa

    from tickets.store import StateStore

    path = ctx.warehouse.state_dir / "tickets.sqlite"
    rows: list[dict[str, object]] = []
    if path.exists():
        store = StateStore(path)
        try:
            for d in store.deliveries(failed=failed):
                inc = store.incident(d.dedup_key)
                status = "failed" if d.dead_reason else ("retrying" if d.last_error else d.state)
                rows.append(
                    {
                        "sink": d.sink,
                        "dedup_key": d.dedup_key,
                        "ticket": d.remote_id,
                        "url": d.remote_url,
                        "status": status,
                        "count": inc.count,
                        "reported": d.sent_count,
                        "last_update": d.last_update.isoformat() if d.last_update else None,
                        "attempts": d.attempts,
                        "reason": d.dead_reason or d.last_error,
                    }
                )
            if failed:
                for h in store.all_health():
                    rows.append(
                        {
                            "sink": h.sink,
                            "dedup_key": "(all keys of this sink)",
                            "status": f"paused until {h.retry_at.isoformat() if h.retry_at else '?'}",
                            "attempts": h.failures,
                            "reason": h.last_error,
                        }
                    )
        finally:
            store.close()
    schema = pa.schema(
        [
            ("sink", pa.string()),
            ("dedup_key", pa.string()),
            ("ticket", pa.string()),
            ("url", pa.string()),
            ("status", pa.string()),
            ("count", pa.int64()),
            ("reported", pa.int64()),
            ("last_update", pa.string()),
            ("attempts", pa.int64()),
            ("reason", pa.string()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)

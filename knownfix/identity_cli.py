"""``knownfix identity ...``: the AD <-> Azure AD reconciliation and the ADSync event join."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from knownfix import output
from knownfix.context import open_context
from knownfix.errors import KnownfixError
from knownfix.options import ConfigOpt, WarehouseOpt

if TYPE_CHECKING:
    from warehouse.identity import ReconcileReport

identity_app = typer.Typer(
    name="identity",
    help="Azure AD Connect: reconcile AD and Azure AD users, tie sync errors to ADSync events.",
    no_args_is_help=True,
)


TITLES = {
    "ad_not_in_azure": "AD users not in Azure AD (in sync scope)",
    "azure_not_in_ad": "Azure AD users not in AD",
    "users_with_sync_errors": "Users (objects) with sync errors",
    "ad_out_of_scope": "AD users outside the sync scope",
    "upn_proxy_collisions": "UPN equals another user's proxy address (future AttributeValueMustBeUnique)",
}
#: Columns shown on screen (CSV and JSON carry every column).
SCREEN_COLUMNS = {
    "ad_not_in_azure": [
        "user_principal_name",
        "sam_account_name",
        "distinguished_name",
        "enabled",
        "sync_errors",
    ],
    "azure_not_in_ad": ["user_principal_name", "display_name", "last_dir_sync_time", "reason"],
    "users_with_sync_errors": [
        "user_principal_name",
        "in_azure",
        "error_type",
        "attribute",
        "conflicting_value",
        "last_seen",
        "reported_by",
    ],
    "ad_out_of_scope": ["user_principal_name", "distinguished_name", "enabled", "in_azure"],
    "upn_proxy_collisions": ["user_principal_name", "held_by", "address", "found_in"],
}


@identity_app.command("reconcile")
def reconcile_command(
    scope_ou: Annotated[
        list[str] | None,
        typer.Option(
            "--scope-ou", help="An OU (DN) in the sync scope; repeat for several. Default: every AD user."
        ),
    ] = None,
    ad_source: Annotated[
        str | None,
        typer.Option("--ad-source", help="Only ad_users rows from files matching this LIKE pattern."),
    ] = None,
    aad_source: Annotated[
        str | None,
        typer.Option("--aad-source", help="Only aad_users rows from files matching this LIKE pattern."),
    ] = None,
    csv_dir: Annotated[
        Path | None, typer.Option("--csv", help="Also write summary.csv and one CSV per section here.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole report as one JSON document.")
    ] = False,
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
) -> None:
    """AD users not in Azure AD, Azure AD users not in AD, sync errors, scope, UPN/SMTP collisions."""
    from warehouse.identity import ReconcileOptions, reconcile

    ctx = open_context(warehouse, config)
    options = ReconcileOptions(tuple(scope_ou or ()), ad_source, aad_source)
    report = reconcile(ctx.warehouse, options)
    if csv_dir is not None:
        write_csv(report, csv_dir)
    if as_json:
        sys.stdout.write(json.dumps(report_json(report), default=str, ensure_ascii=False, indent=2) + "\n")
        return
    print_report(report, Console())
    if csv_dir is not None:
        Console(stderr=True).print(f"[dim]CSV files written to {csv_dir}[/dim]")


@identity_app.command("events")
def events_command(
    fmt: Annotated[
        output.Format, typer.Option("--format", "-f", help="table, csv, json or parquet.")
    ] = output.Format.table,
    out: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.")] = None,
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Each sync error beside the ADSync / Directory Synchronization events about the same object."""
    from warehouse.identity import sync_error_events

    ctx = open_context(warehouse, config)
    output.emit(sync_error_events(ctx.warehouse), fmt, out)


def report_json(report: ReconcileReport) -> dict[str, object]:
    return {"summary": report.summary, "sections": {k: t.to_pylist() for k, t in report.sections.items()}}


def write_csv(report: ReconcileReport, folder: Path) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from warehouse.identity import SECTIONS

    try:
        folder.mkdir(parents=True, exist_ok=True)
        summary = pa.table(
            {"item": list(report.summary), "value": [_text(v) for v in report.summary.values()]}
        )
        pacsv.write_csv(summary, folder / "summary.csv")
        for name in SECTIONS:
            pacsv.write_csv(report.sections[name], folder / f"{name}.csv")
    except OSError as exc:
        raise KnownfixError(f"cannot write the CSV files: {exc.strerror or exc}", where=str(folder)) from exc


def _text(value: object) -> str:
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return "" if value is None else str(value)


def print_report(report: ReconcileReport, console: Console) -> None:
    from warehouse.identity import SECTIONS

    totals = Table(title="Identity reconciliation", show_header=False)
    totals.add_column("item")
    totals.add_column("value", justify="right")
    for key, value in report.summary.items():
        totals.add_row(key.replace("_", " "), _text(value))
    console.print(totals)
    for name in SECTIONS:
        rows = report.sections[name]
        if name == "ad_out_of_scope" and not report.summary.get("scope_ous"):
            continue
        table = Table(title=f"{TITLES[name]}: {rows.num_rows}", title_justify="left")
        columns = [c for c in SCREEN_COLUMNS[name] if c in rows.column_names]
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows.select(columns).to_pylist():
            table.add_row(*(_text(v) for v in row.values()))
        console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(identity_app, name="identity")

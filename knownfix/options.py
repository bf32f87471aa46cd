"""Command-line options every command shares, defined once so their help text stays the same."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from knownfix.output import Format

WarehouseOpt = Annotated[
    Path | None,
    typer.Option(
        "--warehouse", "-w", help="Warehouse folder (default: $KNOWNFIX_WAREHOUSE, config, ./knownfix-data)."
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (default: $KNOWNFIX_CONFIG or ./knownfix.yaml)."),
]
FormatOpt = Annotated[
    Format, typer.Option("--format", "-f", help="Output format: table, csv, json or parquet.")
]

"""What every command needs: the validated config and the warehouse it points at.

The config, parser and warehouse modules are imported when a context is opened, not when the CLI
is built, so ``knownfix --help`` and argument errors do not load pydantic, Arrow or Delta Lake.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ingest.backfill import CommitHook
    from knownfix.config import Config
    from parsers.base import ParseOptions
    from warehouse.store import Warehouse


@dataclass
class Context:
    config: Config
    warehouse: Warehouse

    def parse_options(self) -> ParseOptions:
        from parsers.base import ParseOptions

        return ParseOptions(timezone=self.config.timezone)

    def after_commit(self) -> CommitHook | None:
        """Rule evaluation after every commit of new rows; a bad rule stops start-up here."""
        from knownfix.rules_cli import evaluation_hook  # the rules CLI imports this module

        return evaluation_hook(self)


def open_context(warehouse: Path | None, config: Path | None) -> Context:
    from knownfix.config import load_config, resolve_warehouse
    from warehouse.store import Warehouse

    cfg = load_config(config)
    return Context(cfg, Warehouse(resolve_warehouse(warehouse, cfg)))

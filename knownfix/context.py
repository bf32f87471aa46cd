"""What every command needs: the validated config and the warehouse it points at."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ingest.backfill import CommitHook
from knownfix.config import Config, load_config, resolve_warehouse
from parsers.base import ParseOptions
from warehouse.store import Warehouse


@dataclass
class Context:
    config: Config
    warehouse: Warehouse

    def parse_options(self) -> ParseOptions:
        return ParseOptions(timezone=self.config.timezone)

    def after_commit(self) -> CommitHook | None:
        """Rule evaluation after every commit of new rows; a bad rule stops start-up here."""
        from knownfix.rules_cli import evaluation_hook  # the rules CLI imports this module

        return evaluation_hook(self)


def open_context(warehouse: Path | None, config: Path | None) -> Context:
    cfg = load_config(config)
    return Context(cfg, Warehouse(resolve_warehouse(warehouse, cfg)))

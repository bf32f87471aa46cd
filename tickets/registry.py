"""The sink types a config file can name, and building the configured sinks.

``sinks:`` in the config is a list of sections with a ``type:`` key; an unknown type is refused
with the list of valid ones. With no sink configured, tickets go to the folder sink
(``<warehouse>/tickets``), so a fresh installation shows tickets without any server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from tickets.base import Sink
from tickets.clock import Clock
from tickets.errors import SinkConfigError
from tickets.folder import FolderConfig, FolderSink
from tickets.github import GitHubConfig, GitHubSink
from tickets.jira import JiraConfig, JiraSink
from tickets.redmine import RedmineConfig, RedmineSink
from tickets.servicenow import ServiceNowConfig, ServiceNowSink
from tickets.webhook import WebhookConfig, WebhookSink

SinkConfig = Annotated[
    WebhookConfig | JiraConfig | ServiceNowConfig | RedmineConfig | GitHubConfig | FolderConfig,
    Field(discriminator="type"),
]

SINK_TYPES = ("webhook", "jira", "servicenow", "redmine", "github", "folder")


def build_sinks(configs: list[SinkConfig], warehouse_root: Path, clock: Clock | None = None) -> list[Sink]:
    """The sinks of ``configs`` (credentials resolved now, so a missing one stops start-up)."""
    if not configs:
        configs = [FolderConfig()]
    names: set[str] = set()
    sinks: list[Sink] = []
    for i, cfg in enumerate(configs):
        name = cfg.name or cfg.type
        if name in names:
            raise SinkConfigError(f"sinks[{i}]: two sinks are named {name!r}; give each a distinct name:")
        names.add(name)
        try:
            sinks.append(_build(cfg, warehouse_root, clock))
        except SinkConfigError as exc:
            raise SinkConfigError(f"sinks[{i}] ({name}): {exc}") from None
    return sinks


def _build(cfg: SinkConfig, warehouse_root: Path, clock: Clock | None) -> Sink:
    if isinstance(cfg, FolderConfig):
        return FolderSink(cfg, cfg.path or warehouse_root / "tickets", clock)
    if isinstance(cfg, WebhookConfig):
        return WebhookSink(cfg, clock)
    if isinstance(cfg, JiraConfig):
        return JiraSink(cfg)
    if isinstance(cfg, ServiceNowConfig):
        return ServiceNowSink(cfg)
    if isinstance(cfg, RedmineConfig):
        return RedmineSink(cfg)
    return GitHubSink(cfg)

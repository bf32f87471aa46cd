"""Configuration: a YAML file validated by pydantic, plus flags and environment variables.

Precedence for the warehouse location: ``--warehouse`` flag, then ``KNOWNFIX_WAREHOUSE``, then
the config file's ``warehouse:``, then ``./knownfix-data``. The config file is ``--config``, or
``KNOWNFIX_CONFIG``, or ``knownfix.yaml`` in the working directory if it exists.
"""

from __future__ import annotations

import os
import zoneinfo
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ingest.settings import SourceConfig, TailConfig
from knownfix.errors import ConfigError
from tickets.config import TicketsConfig
from tickets.registry import SinkConfig

DEFAULT_WAREHOUSE = Path("knownfix-data")
DEFAULT_CONFIG_NAME = "knownfix.yaml"


class Config(BaseModel):
    """The whole configuration file. Unknown keys are errors, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid")

    warehouse: Path | None = None
    #: Time zone of exports whose timestamps are local time (Event Viewer CSV/TXT).
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        check_timezone(value)
        return value

    #: Extra rule files or folders, loaded after the bundled library.
    rules: list[Path] = Field(default_factory=list)
    #: Sections owned by the tailer and the ticket sinks; validated by their own models.
    sources: list[SourceConfig] = Field(default_factory=list)
    tail: TailConfig = Field(default_factory=TailConfig)
    sinks: list[SinkConfig] = Field(default_factory=list)
    tickets: TicketsConfig = Field(default_factory=TicketsConfig)


def check_timezone(name: str) -> str:
    """An IANA zone name such as ``Europe/Berlin``; anything else is refused with an example."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin or UTC"
        ) from None
    return name


def config_path(flag: Path | None) -> Path | None:
    if flag is not None:
        if not flag.is_file():
            raise ConfigError(f"config file {flag} does not exist; check --config")
        return flag
    env = os.environ.get("KNOWNFIX_CONFIG")
    if env:
        if not Path(env).is_file():
            raise ConfigError(f"config file {env} (from KNOWNFIX_CONFIG) does not exist")
        return Path(env)
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.is_file() else None


def load_config(flag: Path | None = None) -> Config:
    """Read and validate the config file; a problem names the file, the key and what to change."""
    path = config_path(flag)
    if path is None:
        return Config()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", where=where) from None
    if not isinstance(raw, dict):
        raise ConfigError(
            "the config file must be a mapping of keys (warehouse:, sources:, ...)", where=str(path)
        )
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                model = _model_at(tuple(err["loc"][:-1]))
                valid = f" (valid keys: {', '.join(model.model_fields)})" if model is not None else ""
                problems.append(f"unknown key {loc!r}{valid}")
            else:
                problems.append(f"{loc}: {err['msg']}")
        raise ConfigError("; ".join(problems), where=str(path)) from None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through lists, optionals and unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model whose keys apply at ``loc`` (e.g. ``("sinks", 0, "jira")`` -> the Jira sink's)."""
    candidates: list[type[BaseModel]] = [Config]
    for part in loc:
        if isinstance(part, int):
            continue
        by_tag = [
            m for m in candidates if m.model_fields.get("type") and m.model_fields["type"].default == part
        ]
        if by_tag:  # a discriminated union: pydantic puts the tag in the path
            candidates = by_tag
            continue
        fields = [m.model_fields[part] for m in candidates if part in m.model_fields]
        if not fields:
            return None
        candidates = _models_in(fields[0].annotation)
    return candidates[0] if len(candidates) == 1 else None


def resolve_warehouse(flag: Path | None, config: Config) -> Path:
    if flag is not None:
        return flag
    env = os.environ.get("KNOWNFIX_WAREHOUSE")
    if env:
        return Path(env)
    if config.warehouse is not None:
        return config.warehouse
    return DEFAULT_WAREHOUSE

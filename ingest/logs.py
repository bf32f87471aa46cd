"""The tailer's own log: one JSON object per line, so journald, Loki or Splunk can parse it.

Every record has ``ts`` (UTC, ISO 8601), ``level`` and ``event`` (a stable name such as
``rotated`` or ``commit``) plus the fields of that event.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from pathlib import Path
from typing import Any

LOGGER_NAME = "knownfix.tail"


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class EventLog:
    """A thin face over ``logging`` that takes an event name and keyword fields."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(LOGGER_NAME)

    def _emit(self, level: int, event: str, fields: dict[str, Any]) -> None:
        if self.logger.isEnabledFor(level):
            self.logger.log(level, event, extra={"fields": fields})

    def debug(self, event: str, **fields: Any) -> None:
        self._emit(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit(logging.ERROR, event, fields)


def setup_logging(path: Path | None = None, level: str = "info") -> EventLog:
    """Send the tailer's log as JSON lines to ``path`` (appending) or to standard error."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    sink: logging.Handler
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        sink = logging.FileHandler(path, encoding="utf-8")
    else:
        sink = logging.StreamHandler(sys.stderr)
    sink.setFormatter(JsonLines())
    logger.addHandler(sink)
    logger.setLevel(level.upper())
    logger.propagate = False
    return EventLog(logger)

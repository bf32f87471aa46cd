"""The ``sources:`` and ``tail:`` sections of the config file, validated by pydantic.

They live here, not in ``knownfix/``, because the tailer reads them; ``knownfix.config`` embeds
them in the whole file's model. Unknown keys are errors so a typo stops start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ObserverMode = Literal["auto", "native", "polling"]
StartPosition = Literal["beginning", "end"]


class SourceConfig(BaseModel):
    """One folder (or file) to follow."""

    model_config = ConfigDict(extra="forbid")

    path: Path
    #: Globs a file must match to be read; a pattern with ``/`` matches the path relative to
    #: ``path``, one without matches the file name.
    include: list[str] = Field(default_factory=lambda: ["*"])
    exclude: list[str] = Field(default_factory=list)
    recursive: bool = True
    #: ``native`` = inotify (local disks), ``polling`` = stat every ``poll_interval`` seconds
    #: (SMB/CIFS and NFS deliver no change events); ``auto`` picks from the mount's file system.
    observer: ObserverMode = "auto"
    poll_interval: float = Field(default=1.0, gt=0, le=3600)
    #: Where reading starts in files already present when tailing starts for the first time;
    #: files that appear later are always read from their beginning.
    start_position: StartPosition = "beginning"
    #: Force a format (a name of ``parsers.registry.PARSERS``) instead of detecting it.
    format: str | None = None


class TailConfig(BaseModel):
    """How the tailer batches, commits and reports."""

    model_config = ConfigDict(extra="forbid")

    #: Files kept open at once; the least recently active are closed and reopened on change.
    max_open_files: int = Field(default=256, ge=2)
    #: Parsed bytes held in memory before a commit is forced (back-pressure bound).
    batch_bytes: int = Field(default=16 * 1024 * 1024, ge=4096)
    #: Bytes read from one file before the next file gets its turn.
    chunk_bytes: int = Field(default=1024 * 1024, ge=1024)
    #: Minimum seconds between two commits while data keeps arriving.
    commit_interval: float = Field(default=0.25, ge=0, le=60)
    #: A last line without its newline is committed once the file was idle this long.
    partial_line_timeout: float = Field(default=5.0, gt=0)
    #: A whole-file format (.evtx, XML exports) is read once its file was idle this long; the
    #: same wait decides a file whose first bytes match a longer known file (a copy still being
    #: written, or a new file that repeats another's header).
    settle_time: float = Field(default=2.0, gt=0)
    #: A file renamed out of sight or deleted is kept open this long after its last growth.
    close_inactive: float = Field(default=60.0, gt=0)
    #: Full re-scan of every source, a safety net for missed change events.
    rescan_interval: float = Field(default=30.0, gt=0)
    #: Merge the small files of a table after this many commits to it (0 = never).
    compact_every: int = Field(default=200, ge=0)
    #: Seconds between two writes of the status file while running.
    status_interval: float = Field(default=1.0, gt=0)
    #: JSON-lines log of the tailer (default: standard error).
    log_file: Path | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"

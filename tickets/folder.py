"""Folder sink: each ticket is a Markdown file for people and a JSON file for tools.

The default when no tracker is configured, so a demo shows tickets without a server. A person
"closes" a ticket by setting ``"status": "closed"`` in its JSON file; when the failure comes back
the dispatcher reopens it (or opens ``<token>-2``, per ``on_closed``), as with any tracker.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from tickets.base import Message, RemoteTicket, Sink
from tickets.clock import Clock, SystemClock
from tickets.config import SinkSettings
from tickets.errors import PermanentError, TransientError
from tickets.markup import Markdown


# -- config model ---------------------------------------------------------------------------------
class FolderConfig(SinkSettings):
    type: Literal["folder"] = "folder"
    #: where the files go (default: ``tickets/`` inside the warehouse folder)
    path: Path | None = None


# -- client ---------------------------------------------------------------------------------------
class FolderSink(Sink):
    max_body = 1_000_000

    def __init__(self, cfg: FolderConfig, root: Path, clock: Clock | None = None) -> None:
        self.name = cfg.name or cfg.type
        self.on_closed = cfg.on_closed
        self.markup = Markdown()
        self.root = root
        self.clock = clock or SystemClock()

    def find(self, token: str) -> list[RemoteTicket]:
        found = [self._ticket(self._load(p.stem)) for p in self._glob(token)]
        return sorted(found, key=lambda t: _ordinal(t.id, token), reverse=True)

    def create(self, msg: Message) -> RemoteTicket:
        n = 1 + max((_ordinal(p.stem, msg.token) for p in self._glob(msg.token)), default=0)
        ticket_id = msg.token if n == 1 else f"{msg.token}-{n}"
        now = self.clock.now().isoformat()
        data = {
            "id": ticket_id,
            "token": msg.token,
            "dedup_key": msg.incident.dedup_key,
            "title": msg.title,
            "severity": msg.incident.severity,
            "status": "open",
            "created": now,
            "updated": now,
            "seq": msg.seq,
            "body": msg.body,
            "comments": [],
        }
        self._save(data)
        return self._ticket(data)

    def get(self, remote_id: str) -> RemoteTicket:
        return self._ticket(self._load(remote_id))

    def comment(self, remote_id: str, msg: Message) -> None:
        self._append(remote_id, msg, status=None)

    def reopen(self, remote_id: str, msg: Message) -> None:
        self._append(remote_id, msg, status="open")

    def resolve(self, remote_id: str, msg: Message) -> None:
        self._append(remote_id, msg, status="closed")

    # -- files --
    def _glob(self, token: str) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [p for p in self.root.glob(f"{token}*.json") if _ordinal(p.stem, token)]

    def _append(self, remote_id: str, msg: Message, status: str | None) -> None:
        data = self._load(remote_id)
        now = self.clock.now().isoformat()
        data["comments"].append({"at": now, "kind": msg.kind, "body": msg.body})
        data["updated"] = now
        if status is not None:
            data["status"] = status
            data["closed_by"] = "knownfix" if status == "closed" else None
        self._save(data)

    def _path(self, remote_id: str, ext: str) -> Path:
        if "/" in remote_id or remote_id.startswith("."):
            raise PermanentError(f"{self.name}: invalid ticket id {remote_id!r}")
        return self.root / f"{remote_id}.{ext}"

    def _load(self, remote_id: str) -> dict[str, Any]:
        path = self._path(remote_id, "json")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PermanentError(f"{self.name}: ticket file {path} is gone", status=404) from None
        except (OSError, ValueError) as exc:
            raise _os_error(self.name, path, exc) from None
        if not isinstance(data, dict) or not isinstance(data.get("comments"), list):
            raise PermanentError(f"{self.name}: {path} is not a ticket file (edited by hand?)")
        return data

    def _save(self, data: dict[str, Any]) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            _atomic_write(
                self._path(data["id"], "json"), json.dumps(data, indent=2, ensure_ascii=False) + "\n"
            )
            _atomic_write(self._path(data["id"], "md"), _markdown(data))
        except OSError as exc:
            raise _os_error(self.name, self.root, exc) from None

    def _ticket(self, data: dict[str, Any]) -> RemoteTicket:
        return RemoteTicket(
            id=str(data["id"]),
            url=str(self._path(str(data["id"]), "md")),
            closed=str(data.get("status", "open")).lower() in {"closed", "resolved", "done"},
            seq=data.get("seq") if isinstance(data.get("seq"), int) else None,
        )


# -- error mapping --------------------------------------------------------------------------------
def _os_error(name: str, path: Path, exc: Exception) -> Exception:
    if isinstance(exc, PermissionError):
        return PermanentError(f"{name}: no permission to write {path}; fix the folder's permissions")
    if isinstance(exc, ValueError):
        return PermanentError(f"{name}: {path} is not valid JSON (edited by hand?): {exc}")
    return TransientError(f"{name}: cannot write {path}: {exc}")


def _ordinal(stem: str, token: str) -> int:
    """1 for ``<token>``, n for ``<token>-n``, 0 for anything else."""
    if stem == token:
        return 1
    rest = stem[len(token) + 1 :] if stem.startswith(token + "-") else ""
    return int(rest) if rest.isdigit() else 0


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _markdown(data: dict[str, Any]) -> str:
    m = Markdown()
    parts = [f"# {m.text(data['title'])}", "", f"Status: {m.text(data['status'])}", "", data["body"]]
    for c in data["comments"]:
        parts += ["---", "", f"{m.bold(c['kind'])} {m.text(c['at'])}", "", c["body"]]
    return "\n".join(parts).rstrip() + "\n"

"""Redmine sink: REST ``/issues.json`` — create, add notes, change status.

The token is a line in the description (``knownfix-key: kf-…``), found again with Redmine's
``description=~`` filter. Status names (``reopen_status``, ``resolve_status``) are looked up in
``/issue_statuses.json``, whose ``is_closed`` also tells whether a person closed the ticket.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx

from tickets.base import Message, RemoteTicket, Sink, parse_marker
from tickets.config import SinkSettings
from tickets.credentials import Redactor, SecretRef
from tickets.errors import PermanentError, TicketError
from tickets.http import HttpClient
from tickets.markup import Markdown, Markup, Textile


# -- config model ---------------------------------------------------------------------------------
class RedmineConfig(SinkSettings):
    type: Literal["redmine"] = "redmine"
    url: str
    api_key: SecretRef
    #: project identifier (or numeric id)
    project: str
    tracker_id: int | None = None
    priority_id: int | None = None
    reopen_status: str = "New"
    resolve_status: str = "Closed"
    #: the server's "Text formatting" setting
    markup: Literal["textile", "common_mark", "markdown"] = "textile"


# -- client ---------------------------------------------------------------------------------------
class RedmineSink(Sink):
    max_body = 60000

    def __init__(self, cfg: RedmineConfig) -> None:
        self.name = cfg.name or cfg.type
        self.on_closed = cfg.on_closed
        self.cfg = cfg
        self.markup: Markup = Textile() if cfg.markup == "textile" else Markdown()
        key = cfg.api_key.resolve()
        self.http = HttpClient(
            self.name,
            cfg.url,
            headers={"X-Redmine-API-Key": key, "Content-Type": "application/json"},
            timeout=cfg.timeout,
            redactor=Redactor([key]),
            refine=_refine,
        )
        self._statuses: dict[str, tuple[int, bool]] | None = None
        self.base = cfg.url.rstrip("/")

    def find(self, token: str) -> list[RemoteTicket]:
        params = {
            "project_id": self.cfg.project,
            "status_id": "*",
            "description": f"~{token}",
            "sort": "id:desc",
            "limit": 25,
        }
        data = self.http.json(self.http.request("GET", "/issues.json", params=params))
        found = []
        for issue in data.get("issues", []):
            has, _ = parse_marker(issue.get("description"), token)
            if has:  # ~ is a substring match: keep only exact marker lines
                found.append(self._ticket(issue, token))
        return found

    def create(self, msg: Message) -> RemoteTicket:
        issue: dict[str, Any] = {
            "project_id": self.cfg.project,
            "subject": msg.title,
            "description": msg.body,
        }
        if self.cfg.tracker_id is not None:
            issue["tracker_id"] = self.cfg.tracker_id
        if self.cfg.priority_id is not None:
            issue["priority_id"] = self.cfg.priority_id
        resp = self.http.request("POST", "/issues.json", json_body={"issue": issue})
        return self._ticket(self.http.json(resp)["issue"], msg.token)

    def get(self, remote_id: str) -> RemoteTicket:
        data = self.http.json(self.http.request("GET", f"/issues/{remote_id}.json"))
        return self._ticket(data["issue"], None)

    def comment(self, remote_id: str, msg: Message) -> None:
        self._put(remote_id, {"notes": msg.body})

    def reopen(self, remote_id: str, msg: Message) -> None:
        self._put(remote_id, {"notes": msg.body, "status_id": self._status(self.cfg.reopen_status)})

    def resolve(self, remote_id: str, msg: Message) -> None:
        self._put(remote_id, {"notes": msg.body, "status_id": self._status(self.cfg.resolve_status)})

    def close(self) -> None:
        self.http.close()

    def _put(self, remote_id: str, fields: dict[str, Any]) -> None:
        self.http.request("PUT", f"/issues/{remote_id}.json", json_body={"issue": fields})

    def _status(self, name: str) -> int:
        if self._statuses is None:
            data = self.http.json(self.http.request("GET", "/issue_statuses.json"))
            self._statuses = {
                str(s["name"]).lower(): (int(s["id"]), bool(s.get("is_closed")))
                for s in data.get("issue_statuses", [])
            }
        found = self._statuses.get(name.lower())
        if found is None:
            valid = ", ".join(sorted(self._statuses)) or "none"
            raise PermanentError(f"{self.name}: no issue status named {name!r} (statuses: {valid})")
        return found[0]

    def _ticket(self, issue: dict[str, Any], token: str | None) -> RemoteTicket:
        status = issue.get("status") or {}
        seq = parse_marker(issue.get("description"), token)[1] if token else None
        return RemoteTicket(
            id=str(issue["id"]),
            url=f"{self.base}/issues/{issue['id']}",
            closed=bool(status.get("is_closed")),
            seq=seq,
        )


# -- error mapping --------------------------------------------------------------------------------
def _refine(resp: httpx.Response) -> TicketError | None:
    if resp.status_code == 422:  # validation: {"errors": [...]}
        try:
            errors = resp.json().get("errors") or []
        except ValueError:
            errors = []
        return PermanentError(f"Redmine refused the ticket: {'; '.join(map(str, errors))}", status=422)
    return None

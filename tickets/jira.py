"""Jira sink (Cloud or Data Center, REST v2 or v3): create, comment, transition.

The token is a label (``kf-…``); ``/search/jql`` (Cloud) or ``/search`` (Data Center) finds it.
v2 bodies are wiki markup, v3 bodies are Atlassian Document Format (converted from Markdown).
Transitions are chosen by name when configured, otherwise by target status category: "done"
to resolve, anything else to reopen. A ticket is closed when its status category is "done".
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tickets import adf
from tickets.base import Message, RemoteTicket, Sink, parse_marker
from tickets.config import SinkSettings
from tickets.credentials import Redactor, SecretRef
from tickets.errors import PermanentError, SinkConfigError
from tickets.http import HttpClient
from tickets.markup import JiraWiki, Markdown, Markup


# -- config model ---------------------------------------------------------------------------------
class JiraConfig(SinkSettings):
    type: Literal["jira"] = "jira"
    url: str
    #: Cloud: Basic auth with ``user`` (e-mail) + API token; Data Center: a personal access token (Bearer)
    deployment: Literal["cloud", "datacenter"] = "cloud"
    api_version: Literal[2, 3] = 2
    user: str | None = None
    token: SecretRef
    project: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,49}$")
    issue_type: str = "Bug"
    labels: list[str] = Field(default_factory=lambda: ["knownfix"])
    #: transition names; unset: the first transition into (out of) the "done" category
    resolve_transition: str | None = None
    reopen_transition: str | None = None


# -- client ---------------------------------------------------------------------------------------
class JiraSink(Sink):
    max_body = 32000  # Jira's text fields hold 32,767 characters

    def __init__(self, cfg: JiraConfig) -> None:
        self.name = cfg.name or cfg.type
        self.on_closed = cfg.on_closed
        self.cfg = cfg
        self.markup: Markup = JiraWiki() if cfg.api_version == 2 else Markdown()
        token = cfg.token.resolve()
        redactor = Redactor()
        redactor.add(token, user=cfg.user)
        headers = {"Content-Type": "application/json"}
        auth = None
        if cfg.deployment == "cloud":
            if not cfg.user:
                raise SinkConfigError(f"sink {self.name}: Jira Cloud needs user: (the account's e-mail)")
            auth = (cfg.user, token)
        else:
            headers["Authorization"] = f"Bearer {token}"
        self.http = HttpClient(
            self.name, cfg.url, headers=headers, auth=auth, timeout=cfg.timeout, redactor=redactor
        )
        self.api = f"/rest/api/{cfg.api_version}"
        self.base = cfg.url.rstrip("/")

    def _text(self, body: str) -> Any:
        return body if self.cfg.api_version == 2 else adf.from_markdown(body)

    def find(self, token: str) -> list[RemoteTicket]:
        jql = f'project = "{self.cfg.project}" AND labels = "{token}" ORDER BY created DESC'
        path = f"{self.api}/search/jql" if self.cfg.deployment == "cloud" else f"{self.api}/search"
        params = {"jql": jql, "fields": "status,description", "maxResults": 20}
        data = self.http.json(self.http.request("GET", path, params=params))
        return [self._ticket(i, token) for i in data.get("issues", [])]

    def create(self, msg: Message) -> RemoteTicket:
        fields = {
            "project": {"key": self.cfg.project},
            "summary": msg.title,
            "description": self._text(msg.body),
            "issuetype": {"name": self.cfg.issue_type},
            "labels": [*self.cfg.labels, msg.token],
        }
        data = self.http.json(self.http.request("POST", f"{self.api}/issue", json_body={"fields": fields}))
        key = str(data["key"])
        return RemoteTicket(id=key, url=f"{self.base}/browse/{key}", closed=False, seq=msg.seq)

    def get(self, remote_id: str) -> RemoteTicket:
        data = self.http.json(
            self.http.request("GET", f"{self.api}/issue/{remote_id}", params={"fields": "status"})
        )
        return self._ticket(data, None)

    def comment(self, remote_id: str, msg: Message) -> None:
        self.http.request(
            "POST", f"{self.api}/issue/{remote_id}/comment", json_body={"body": self._text(msg.body)}
        )

    def reopen(self, remote_id: str, msg: Message) -> None:
        self._transition(remote_id, self.cfg.reopen_transition, done=False)
        self.comment(remote_id, msg)

    def resolve(self, remote_id: str, msg: Message) -> None:
        self.comment(remote_id, msg)
        self._transition(remote_id, self.cfg.resolve_transition, done=True)

    def close(self) -> None:
        self.http.close()

    def _transition(self, remote_id: str, name: str | None, *, done: bool) -> None:
        path = f"{self.api}/issue/{remote_id}/transitions"
        available = self.http.json(self.http.request("GET", path)).get("transitions", [])
        chosen = None
        for t in available:
            category = (((t.get("to") or {}).get("statusCategory") or {}).get("key") or "").lower()
            if (name is not None and str(t.get("name", "")).lower() == name.lower()) or (
                name is None and (category == "done") == done
            ):
                chosen = t
                break
        if chosen is None:
            names = ", ".join(str(t.get("name")) for t in available) or "none"
            want = name or ("a transition to a done status" if done else "a transition out of done")
            raise PermanentError(f"{self.name}: {remote_id} has no {want!s} (transitions: {names})")
        self.http.request("POST", path, json_body={"transition": {"id": str(chosen["id"])}})

    def _ticket(self, issue: dict[str, Any], token: str | None) -> RemoteTicket:
        fields = issue.get("fields") or {}
        category = (((fields.get("status") or {}).get("statusCategory")) or {}).get("key")
        desc = fields.get("description")
        text = adf.to_text(desc) if isinstance(desc, dict) else desc
        return RemoteTicket(
            id=str(issue.get("key") or issue.get("id")),
            url=f"{self.base}/browse/{issue.get('key') or issue.get('id')}",
            closed=category == "done",
            seq=parse_marker(text, token)[1] if token else None,
        )

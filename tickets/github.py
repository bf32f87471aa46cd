"""GitHub Issues sink: create, comment, close (``state_reason: completed``), reopen.

The token is a label (``kf-…``) on the issue: ``GET /repos/{owner}/{repo}/issues?labels=…&state=all``
finds it again, consistently (the search API is eventually consistent, labels are not). GitHub
creates a label the first time an issue uses it; the token needs push (triage) access to be kept.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import httpx
from pydantic import Field

from tickets.base import Message, RemoteTicket, Sink, parse_marker
from tickets.config import SinkSettings
from tickets.credentials import Redactor, SecretRef
from tickets.errors import TicketError, TransientError
from tickets.http import HttpClient, retry_after
from tickets.markup import Markdown

API_VERSION = "2022-11-28"


# -- config model ---------------------------------------------------------------------------------
class GitHubConfig(SinkSettings):
    type: Literal["github"] = "github"
    #: ``owner/name``
    repo: str
    token: SecretRef
    #: GitHub Enterprise Server: ``https://HOST/api/v3``
    api_url: str = "https://api.github.com"
    labels: list[str] = Field(default_factory=lambda: ["knownfix"])


# -- client ---------------------------------------------------------------------------------------
class GitHubSink(Sink):
    max_body = 65536  # GitHub's limit for an issue body or comment

    def __init__(self, cfg: GitHubConfig) -> None:
        self.name = cfg.name or cfg.type
        self.on_closed = cfg.on_closed
        self.markup = Markdown()
        self.cfg = cfg
        token = cfg.token.resolve()
        self.http = HttpClient(
            self.name,
            cfg.api_url,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
            },
            timeout=cfg.timeout,
            redactor=Redactor([token]),
            refine=_refine,
        )
        self.path = f"/repos/{cfg.repo}/issues"

    def find(self, token: str) -> list[RemoteTicket]:
        params = {"labels": token, "state": "all", "sort": "created", "direction": "desc", "per_page": 20}
        issues = self.http.json(self.http.request("GET", self.path, params=params))
        return [self._ticket(i, token) for i in issues if "pull_request" not in i]

    def create(self, msg: Message) -> RemoteTicket:
        body = {"title": msg.title, "body": msg.body, "labels": [*self.cfg.labels, msg.token]}
        return self._ticket(self.http.json(self.http.request("POST", self.path, json_body=body)), msg.token)

    def get(self, remote_id: str) -> RemoteTicket:
        return self._ticket(self.http.json(self.http.request("GET", f"{self.path}/{remote_id}")), None)

    def comment(self, remote_id: str, msg: Message) -> None:
        self.http.request("POST", f"{self.path}/{remote_id}/comments", json_body={"body": msg.body})

    def reopen(self, remote_id: str, msg: Message) -> None:
        self.http.request("PATCH", f"{self.path}/{remote_id}", json_body={"state": "open"})
        self.comment(remote_id, msg)

    def resolve(self, remote_id: str, msg: Message) -> None:
        self.comment(remote_id, msg)
        self.http.request(
            "PATCH", f"{self.path}/{remote_id}", json_body={"state": "closed", "state_reason": "completed"}
        )

    def close(self) -> None:
        self.http.close()

    def _ticket(self, issue: dict[str, Any], token: str | None) -> RemoteTicket:
        return RemoteTicket(
            id=str(issue["number"]),
            url=issue.get("html_url"),
            closed=issue.get("state") == "closed",
            seq=parse_marker(issue.get("body"), token)[1] if token else None,
        )


# -- error mapping --------------------------------------------------------------------------------
def _refine(resp: httpx.Response) -> TicketError | None:
    """GitHub signals rate limits with 403 as well as 429 (primary and secondary limits)."""
    if resp.status_code not in (403, 429):
        return None
    try:
        message = str(resp.json().get("message", ""))
    except ValueError:
        message = ""
    limited = resp.headers.get("x-ratelimit-remaining") == "0" or "rate limit" in message.lower()
    if not limited and resp.status_code == 403:
        return None
    wait = retry_after(resp, dt.datetime.now(dt.UTC))
    if wait is None:
        wait = 60.0  # GitHub: "otherwise, wait for at least one minute before retrying"
    return TransientError(
        f"GitHub rate limit ({resp.status_code}): {message or 'slow down'}", retry_after=wait
    )

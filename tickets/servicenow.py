"""ServiceNow sink: Table API incidents, found again by ``correlation_id``.

Create ``POST /api/now/table/incident`` with ``correlation_id`` = the token; updates are work
notes (``PATCH`` with ``work_notes``); resolve sets state 6 with ``close_code`` and
``close_notes``; reopen sets state 2 (In Progress). Incidents in state 7 (Closed) or 8 (Canceled)
are read-only in a default instance, so a recurrence opens a new incident that links them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tickets.base import Message, RemoteTicket, Sink, parse_marker
from tickets.config import SinkSettings
from tickets.credentials import Redactor, SecretRef
from tickets.http import HttpClient
from tickets.markup import Markup

FIELDS = "sys_id,number,state,correlation_id,description"


# -- config model ---------------------------------------------------------------------------------
class ServiceNowConfig(SinkSettings):
    type: Literal["servicenow"] = "servicenow"
    #: ``https://INSTANCE.service-now.com``
    instance_url: str
    user: str
    password: SecretRef
    table: str = "incident"
    #: journal field for updates: internal ``work_notes`` or customer-visible ``comments``
    journal_field: Literal["work_notes", "comments"] = "work_notes"
    #: extra fields for new incidents (assignment_group, caller_id, category, cmdb_ci, …)
    fields: dict[str, str] = Field(default_factory=lambda: {})
    #: severity → urgency/impact (1 high, 2 medium, 3 low)
    urgency: dict[str, str] = Field(
        default_factory=lambda: {"critical": "1", "high": "1", "medium": "2", "low": "3", "info": "3"}
    )
    impact: dict[str, str] = Field(
        default_factory=lambda: {"critical": "1", "high": "2", "medium": "2", "low": "3", "info": "3"}
    )
    resolved_states: list[str] = Field(default_factory=lambda: ["6"])
    readonly_states: list[str] = Field(default_factory=lambda: ["7", "8"])
    resolve_state: str = "6"
    reopen_state: str = "2"
    close_code: str = "Solution provided"


# -- client ---------------------------------------------------------------------------------------
class ServiceNowSink(Sink):
    max_body = 4000  # the default length of incident.description

    def __init__(self, cfg: ServiceNowConfig) -> None:
        self.name = cfg.name or cfg.type
        self.on_closed = cfg.on_closed
        self.cfg = cfg
        self.markup = Markup()
        password = cfg.password.resolve()
        redactor = Redactor()
        redactor.add(password, user=cfg.user)
        self.http = HttpClient(
            self.name,
            cfg.instance_url,
            headers={"Content-Type": "application/json"},
            auth=(cfg.user, password),
            timeout=cfg.timeout,
            redactor=redactor,
        )
        self.path = f"/api/now/table/{cfg.table}"
        self.base = cfg.instance_url.rstrip("/")

    def find(self, token: str) -> list[RemoteTicket]:
        params = {
            "sysparm_query": f"correlation_id={token}^ORDERBYDESCsys_created_on",
            "sysparm_fields": FIELDS,
            "sysparm_limit": 20,
        }
        data = self.http.json(self.http.request("GET", self.path, params=params))
        return [self._ticket(r, token) for r in data.get("result", [])]

    def create(self, msg: Message) -> RemoteTicket:
        sev = msg.incident.severity.lower()
        record: dict[str, Any] = {
            **self.cfg.fields,
            "short_description": msg.title[:160],
            "description": msg.body,
            "correlation_id": msg.token,
            "correlation_display": "knownfix",
            "urgency": self.cfg.urgency.get(sev, "2"),
            "impact": self.cfg.impact.get(sev, "2"),
        }
        resp = self.http.request("POST", self.path, json_body=record, params={"sysparm_fields": FIELDS})
        return self._ticket(self.http.json(resp)["result"], msg.token)

    def get(self, remote_id: str) -> RemoteTicket:
        resp = self.http.request("GET", f"{self.path}/{remote_id}", params={"sysparm_fields": FIELDS})
        return self._ticket(self.http.json(resp)["result"], None)

    def comment(self, remote_id: str, msg: Message) -> None:
        self._patch(remote_id, {self.cfg.journal_field: msg.body})

    def reopen(self, remote_id: str, msg: Message) -> None:
        self._patch(remote_id, {"state": self.cfg.reopen_state, self.cfg.journal_field: msg.body})

    def resolve(self, remote_id: str, msg: Message) -> None:
        self._patch(
            remote_id,
            {"state": self.cfg.resolve_state, "close_code": self.cfg.close_code, "close_notes": msg.body},
        )

    def close(self) -> None:
        self.http.close()

    def _patch(self, remote_id: str, fields: dict[str, str]) -> None:
        self.http.request(
            "PATCH", f"{self.path}/{remote_id}", json_body=fields, params={"sysparm_fields": FIELDS}
        )

    def _ticket(self, rec: dict[str, Any], token: str | None) -> RemoteTicket:
        state = str(rec.get("state", ""))
        sys_id = str(rec["sys_id"])
        return RemoteTicket(
            id=sys_id,
            url=f"{self.base}/nav_to.do?uri={self.cfg.table}.do?sys_id={sys_id}",
            closed=state in self.cfg.resolved_states or state in self.cfg.readonly_states,
            seq=parse_marker(rec.get("description"), token)[1] if token else None,
            reopenable=state not in self.cfg.readonly_states,
        )

"""Generic webhook sink: one JSON POST per event (open, update, reopen, resolve).

With ``secret`` set, each request carries ``X-Knownfix-Timestamp`` and
``X-Knownfix-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``, so the receiver can
check the sender and refuse replays. ``Idempotency-Key`` (token, event, seq) is the same for every
retry of one event. A webhook cannot be asked what it holds: ``find`` knows nothing and a ticket
is never "closed by a person"; the receiver deduplicates on ``dedup_key`` / ``Idempotency-Key``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Literal

import httpx
from pydantic import Field

from tickets.base import Message, RemoteTicket, Sink
from tickets.clock import Clock, SystemClock
from tickets.config import SinkSettings
from tickets.credentials import Redactor, SecretRef
from tickets.errors import SinkConfigError
from tickets.http import HttpClient
from tickets.markup import MARKUPS
from tickets.templates import when

SIGNATURE_HEADER = "X-Knownfix-Signature"
TIMESTAMP_HEADER = "X-Knownfix-Timestamp"


# -- config model ---------------------------------------------------------------------------------
class WebhookConfig(SinkSettings):
    type: Literal["webhook"] = "webhook"
    #: the URL, or where to read it from when the URL itself is a secret (Slack/Teams hooks)
    url: str | SecretRef
    secret: SecretRef | None = None
    signature_header: str = SIGNATURE_HEADER
    markup: Literal["markdown", "plain"] = "markdown"
    headers: dict[str, str] = Field(default_factory=lambda: {})


# -- client ---------------------------------------------------------------------------------------
class WebhookSink(Sink):
    max_body = 60000

    def __init__(self, cfg: WebhookConfig, clock: Clock | None = None) -> None:
        self.name = cfg.name or cfg.type
        self.on_closed = cfg.on_closed
        self.cfg = cfg
        self.markup = MARKUPS[cfg.markup]
        self.clock = clock or SystemClock()
        url = cfg.url if isinstance(cfg.url, str) else cfg.url.resolve()
        parts = httpx.URL(url)
        if parts.scheme not in ("http", "https") or not parts.host:
            raise SinkConfigError(f"sink {self.name}: url must be an http(s) URL")
        self.path = parts.raw_path.decode() or "/"
        self.secret = cfg.secret.resolve().encode() if cfg.secret is not None else None
        redactor = Redactor([url, self.path] if not isinstance(cfg.url, str) else [])
        if self.secret is not None:
            redactor.add(self.secret.decode())
        self.http = HttpClient(
            self.name,
            str(parts.copy_with(raw_path=b"/")),
            headers={"Content-Type": "application/json", **cfg.headers},
            timeout=cfg.timeout,
            redactor=redactor,
        )

    def find(self, token: str) -> list[RemoteTicket]:
        return []

    def create(self, msg: Message) -> RemoteTicket:
        self._post(msg, token_id=msg.token)
        return RemoteTicket(id=msg.token, url=None, seq=msg.seq)

    def get(self, remote_id: str) -> RemoteTicket:
        return RemoteTicket(id=remote_id)

    def comment(self, remote_id: str, msg: Message) -> None:
        self._post(msg, token_id=remote_id)

    def reopen(self, remote_id: str, msg: Message) -> None:
        self._post(msg, token_id=remote_id)

    def resolve(self, remote_id: str, msg: Message) -> None:
        self._post(msg, token_id=remote_id)

    def close(self) -> None:
        self.http.close()

    def payload(self, msg: Message, token_id: str) -> dict[str, Any]:
        inc = msg.incident
        news = msg.news
        return {
            "event": msg.kind,
            "ticket": token_id,
            "dedup_key": inc.dedup_key,
            "seq": msg.seq,
            "title": msg.title,
            "text": msg.body,
            "rule_id": inc.rule_id,
            "rule_title": inc.rule_title,
            "severity": inc.severity,
            "group_key": inc.group_key,
            "first_seen": when(inc.first_seen),
            "last_seen": when(inc.last_seen),
            "count": inc.count,
            "new_count": news.count if news else None,
            "fix": {"summary": inc.fix.summary, "causes": [c.__dict__ for c in inc.fix.causes]},
            "references": inc.references,
            "query": inc.query,
            "samples": [s.to_dict() for s in (news.samples if news else inc.samples)][-5:],
        }

    def _post(self, msg: Message, token_id: str) -> None:
        body = json.dumps(self.payload(msg, token_id), ensure_ascii=False, sort_keys=True).encode()
        headers = {"Idempotency-Key": f"{msg.token}:{msg.kind}:{msg.seq}"}
        if self.secret is not None:
            ts = str(int(self.clock.now().timestamp()))
            sig = hmac.new(self.secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            headers[TIMESTAMP_HEADER] = ts
            headers[self.cfg.signature_header] = f"sha256={sig}"
        self.http.request("POST", self.path, content=body, headers=headers)

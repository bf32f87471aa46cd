"""HTTP for the tracker sinks: one place that turns transport failures and status codes into
``TransientError`` (retry) or ``PermanentError`` (dead-letter), with secrets redacted.

Transient: timeouts, refused or reset connections, 408, 425, 429 (honouring ``Retry-After``, in
seconds or as an HTTP date), 5xx. Permanent: every other 4xx (400 bad request, 401/403
credentials or permissions, 404 wrong URL or project, 422 validation). A sink can refine this
(GitHub's rate limit answers 403 with ``x-ratelimit-remaining: 0``).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from collections.abc import Callable
from typing import Any

import httpx

from tickets.credentials import Redactor
from tickets.errors import PermanentError, TicketError, TransientError

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "knownfix-tickets/0.1"

#: extracts a readable reason from a tracker's error body
Detail = Callable[[Any], str]
#: a sink's own mapping; returns None to fall back to the default one
Refine = Callable[[httpx.Response], TicketError | None]


def retry_after(resp: httpx.Response, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta or HTTP date) or a ``X-RateLimit-Reset`` epoch."""
    value = resp.headers.get("retry-after")
    now = now or dt.datetime.now(dt.UTC)
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, (when - now).total_seconds())
        except (TypeError, ValueError):
            return None
    reset = resp.headers.get("x-ratelimit-reset")
    if reset and reset.strip().isdigit():
        return max(0.0, float(reset) - now.timestamp())
    return None


def generic_detail(body: Any) -> str:
    """The message trackers commonly put in error bodies (Jira, ServiceNow, GitHub, Redmine)."""
    if isinstance(body, dict):
        parts: list[str] = []
        for key in ("errorMessages", "errors", "message", "error"):
            v = body.get(key)
            if isinstance(v, list):
                parts.extend(str(x) for x in v)
            elif isinstance(v, dict):
                if "message" in v:
                    parts.append(str(v.get("message")) + (f" ({v['detail']})" if v.get("detail") else ""))
                else:
                    parts.extend(f"{k}: {x}" for k, x in v.items())
            elif v:
                parts.append(str(v))
        return "; ".join(parts)
    return ""


class HttpClient:
    """A tracker's base URL, auth and timeouts; every failure comes out typed and redacted."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float = 10.0,
        redactor: Redactor | None = None,
        refine: Refine | None = None,
        detail: Detail = generic_detail,
    ) -> None:
        self.name = name
        self.redact = redactor or Redactor()
        self.refine = refine
        self.detail = detail
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
            auth=auth,
            timeout=timeout,
            follow_redirects=False,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        what = f"{self.name}: {method} {path}"
        try:
            resp = self.client.request(
                method, path, json=json_body, params=params, content=content, headers=headers
            )
        except httpx.TimeoutException:
            raise TransientError(self.redact(f"{what} timed out")) from None
        except httpx.TransportError as exc:
            raise TransientError(self.redact(f"{what} failed: {type(exc).__name__}: {exc}")) from None
        if resp.is_success:
            return resp
        if self.refine is not None:
            refined = self.refine(resp)
            if refined is not None:
                raise refined
        reason = self._reason(resp)
        msg = self.redact(f"{what} answered {resp.status_code} {resp.reason_phrase}{reason}")
        if resp.status_code in TRANSIENT_STATUS:
            raise TransientError(msg, retry_after=retry_after(resp))
        if resp.is_redirect:
            msg += " (a redirect: check the URL, e.g. http:// vs https://)"
        raise PermanentError(msg, status=resp.status_code)

    def _reason(self, resp: httpx.Response) -> str:
        try:
            detail = self.detail(resp.json())
        except (ValueError, json.JSONDecodeError):
            detail = resp.text.strip().splitlines()[0][:200] if resp.text.strip() else ""
        return f": {detail}" if detail else ""

    def json(self, resp: httpx.Response) -> Any:
        """The body as JSON; a non-JSON success answer (a login page, a proxy) is permanent."""
        try:
            return resp.json()
        except ValueError:
            raise PermanentError(
                self.redact(
                    f"{self.name}: {resp.request.method} {resp.request.url.path} answered "
                    f"{resp.status_code} without JSON; check the URL"
                )
            ) from None

    def close(self) -> None:
        self.client.close()

"""Local stand-ins for Jira, ServiceNow, GitHub and a webhook receiver, on pytest-httpserver.

Each checks what its public API documentation requires (paths, auth header, required fields,
body formats) and answers with the documented status codes and bodies; a request that breaks the
contract is answered as the real service would (401, 400, 403, 404, 422) *and* recorded in
``violations``, which every test asserts empty. ``inject`` makes the next matching requests fail
(429 with ``Retry-After``, 5xx, a slow answer) before or after doing their work.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tickets.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER

Handler = Callable[[Request, re.Match[str]], Response]


def reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    text = "" if body is None else json.dumps(body)
    return Response(text, status=status, headers=headers or {}, content_type="application/json")


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int | None = 503  # None with after=True: the real answer, late
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    after: bool = False  # do the work, then fail (the answer is lost)
    delay: float = 0.0  # a slow answer (the client may time out first)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw: bytes


class FakeTracker:
    routes: ClassVar[list[tuple[str, str, str]]] = []  # (method, path regex, handler method name)

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.lock = threading.Lock()
        self.seen: list[Seen] = []
        self.violations: list[str] = []
        self.faults: list[Fault] = []
        self._compiled = [(m, re.compile(p + "$"), getattr(self, h)) for m, p, h in self.routes]
        server.expect_request(re.compile(".*")).respond_with_handler(self._handle)

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def inject(self, method: str, path: str, status: int | None = 503, **kw: Any) -> None:
        self.faults.append(Fault(method, re.compile(path), status, **kw))

    def violation(self, text: str, resp: Response) -> Response:
        self.violations.append(text)
        return resp

    def calls(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and re.fullmatch(path, s.path)]

    def _handle(self, request: Request) -> Response:
        raw = request.get_data()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        seen = Seen(request.method, request.path, dict(request.args), dict(request.headers), body, raw)
        with self.lock:
            self.seen.append(seen)
            fault = next(
                (
                    f
                    for f in self.faults
                    if f.times > 0 and f.method == request.method and f.path.search(request.path)
                ),
                None,
            )
            if fault is not None:
                fault.times -= 1
        if fault is not None and not fault.after:
            time.sleep(fault.delay)
            return reply(fault.body, fault.status or 503, fault.headers)
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        for method, pattern, handler in self._compiled:
            m = pattern.match(request.path)
            if m and method == request.method:
                with self.lock:
                    resp: Response = handler(request, m)
                break
        else:
            resp = self.violation(
                f"no such endpoint: {request.method} {request.path}", reply({"message": "Not Found"}, 404)
            )
        if fault is not None:
            time.sleep(fault.delay)  # a slow server, not synchronisation
            if fault.status is not None:
                return reply(fault.body, fault.status, fault.headers)
        return resp

    def authenticate(self, request: Request) -> Response | None:
        return None


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


# -- GitHub ------------------------------------------------------------------------------------------
class FakeGitHub(FakeTracker):
    """REST API "Issues" and "Issue comments" (docs.github.com/rest/issues), API version 2022-11-28."""

    routes: ClassVar[list[tuple[str, str, str]]] = [
        ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues", "list_issues"),
        ("POST", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues", "create_issue"),
        ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues/(?P<n>\d+)", "get_issue"),
        ("PATCH", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues/(?P<n>\d+)", "update_issue"),
        ("POST", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues/(?P<n>\d+)/comments", "create_comment"),
    ]

    def __init__(
        self, server: HTTPServer, token: str = "ghp_test_token_0123456789", repo: str = "contoso/ops"
    ) -> None:
        super().__init__(server)
        self.token = token
        self.repo = repo
        self.issues: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[str]] = {}
        self._n = itertools.count(1)
        self.on_create: Callable[[], None] | None = None

    def authenticate(self, request: Request) -> Response | None:
        if not request.headers.get("User-Agent"):
            return self.violation(
                "no User-Agent", reply({"message": "Request forbidden by administrative rules."}, 403)
            )
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            # echoes what it got, so tests can prove the client redacts it from its errors
            return reply({"message": f"Bad credentials ({request.headers.get('Authorization')})"}, 401)
        if request.headers.get("Accept") != "application/vnd.github+json":
            self.violations.append("Accept is not application/vnd.github+json")
        if request.headers.get("X-GitHub-Api-Version") != "2022-11-28":
            self.violations.append("X-GitHub-Api-Version missing")
        return None

    def _repo(self, m: re.Match[str]) -> bool:
        return f"{m['o']}/{m['r']}" == self.repo

    def list_issues(self, req: Request, m: re.Match[str]) -> Response:
        if not self._repo(m):
            return reply({"message": "Not Found"}, 404)
        want = set(filter(None, req.args.get("labels", "").split(",")))
        state = req.args.get("state", "open")
        found = [
            i
            for i in self.issues.values()
            if want <= {lb["name"] for lb in i["labels"]} and (state == "all" or i["state"] == state)
        ]
        reverse = req.args.get("direction", "desc") == "desc"
        return reply(sorted(found, key=lambda i: i["number"], reverse=reverse))

    def create_issue(self, req: Request, m: re.Match[str]) -> Response:
        body = req.get_json(silent=True) or {}
        if not self._repo(m):
            return reply({"message": "Not Found"}, 404)
        if not isinstance(body.get("title"), str) or not body["title"]:
            return self.violation(
                "issue without title",
                reply(
                    {
                        "message": "Validation Failed",
                        "errors": [{"resource": "Issue", "code": "missing_field", "field": "title"}],
                    },
                    422,
                ),
            )
        if len(body.get("body") or "") > 65536:
            return self.violation("body too long", reply({"message": "Validation Failed"}, 422))
        n = next(self._n)
        issue = {
            "id": 1000 + n,
            "number": n,
            "title": body["title"],
            "body": body.get("body"),
            "state": "open",
            "state_reason": None,
            "labels": [{"name": lb} for lb in body.get("labels", [])],
            "html_url": f"https://github.com/{self.repo}/issues/{n}",
            "url": f"{self.url}/repos/{self.repo}/issues/{n}",
        }
        self.issues[n] = issue
        self.comments[n] = []
        if self.on_create is not None:
            self.on_create()
        return reply(issue, 201, {"Location": issue["url"]})

    def get_issue(self, req: Request, m: re.Match[str]) -> Response:
        issue = self.issues.get(int(m["n"]))
        return reply(issue, 200) if issue and self._repo(m) else reply({"message": "Not Found"}, 404)

    def update_issue(self, req: Request, m: re.Match[str]) -> Response:
        issue = self.issues.get(int(m["n"]))
        if issue is None:
            return reply({"message": "Not Found"}, 404)
        body = req.get_json(silent=True) or {}
        if body.get("state") not in (None, "open", "closed"):
            return self.violation("bad state", reply({"message": "Validation Failed"}, 422))
        if body.get("state_reason") not in (None, "completed", "not_planned", "reopened", "duplicate"):
            return self.violation("bad state_reason", reply({"message": "Validation Failed"}, 422))
        issue.update({k: v for k, v in body.items() if k in ("state", "state_reason", "title", "body")})
        return reply(issue)

    def create_comment(self, req: Request, m: re.Match[str]) -> Response:
        n = int(m["n"])
        body = req.get_json(silent=True) or {}
        if n not in self.issues:
            return reply({"message": "Not Found"}, 404)
        if not isinstance(body.get("body"), str):
            return self.violation("comment without body", reply({"message": "Validation Failed"}, 422))
        self.comments[n].append(body["body"])
        return reply({"id": 5000 + len(self.comments[n]), "body": body["body"]}, 201)

    def close_as_a_person(self, n: int) -> None:
        self.issues[n]["state"] = "closed"

    def tickets(self) -> list[dict[str, Any]]:
        return list(self.issues.values())


# -- Jira --------------------------------------------------------------------------------------------
TRANSITIONS = [
    {"id": "11", "name": "To Do", "to": {"name": "To Do", "statusCategory": {"key": "new"}}},
    {
        "id": "21",
        "name": "In Progress",
        "to": {"name": "In Progress", "statusCategory": {"key": "indeterminate"}},
    },
    {"id": "31", "name": "Done", "to": {"name": "Done", "statusCategory": {"key": "done"}}},
]


def is_adf(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and doc.get("type") == "doc"
        and doc.get("version") == 1
        and isinstance(doc.get("content"), list)
    )


class FakeJira(FakeTracker):
    """Jira Cloud platform REST API v2/v3: issues, comments, transitions, ``/search/jql``."""

    routes: ClassVar[list[tuple[str, str, str]]] = [
        ("POST", r"/rest/api/(?P<v>[23])/issue", "create_issue"),
        ("GET", r"/rest/api/(?P<v>[23])/search/jql", "search"),
        ("GET", r"/rest/api/(?P<v>[23])/search", "search_removed"),
        ("GET", r"/rest/api/(?P<v>[23])/issue/(?P<k>[A-Z]+-\d+)", "get_issue"),
        ("POST", r"/rest/api/(?P<v>[23])/issue/(?P<k>[A-Z]+-\d+)/comment", "add_comment"),
        ("GET", r"/rest/api/(?P<v>[23])/issue/(?P<k>[A-Z]+-\d+)/transitions", "get_transitions"),
        ("POST", r"/rest/api/(?P<v>[23])/issue/(?P<k>[A-Z]+-\d+)/transitions", "do_transition"),
    ]

    def __init__(
        self,
        server: HTTPServer,
        user: str = "ops@contoso.com",
        token: str = "ATATT3xFfGF0-test",
        project: str = "OPS",
    ) -> None:
        super().__init__(server)
        self.user, self.token, self.project = user, token, project
        self.issues: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, list[Any]] = {}
        self._n = itertools.count(1)

    def authenticate(self, request: Request) -> Response | None:
        if request.headers.get("Authorization") != basic(self.user, self.token):
            return Response(
                "Client must be authenticated to access this resource.", 401, content_type="text/html"
            )
        if request.method in ("POST", "PUT") and "application/json" not in request.headers.get(
            "Content-Type", ""
        ):
            return self.violation(
                "POST without JSON content type", reply({"errorMessages": ["Unsupported Media Type"]}, 415)
            )
        return None

    def _text_ok(self, v: str, value: Any) -> bool:
        return isinstance(value, str) if v == "2" else is_adf(value)

    def create_issue(self, req: Request, m: re.Match[str]) -> Response:
        fields = (req.get_json(silent=True) or {}).get("fields") or {}
        errors: dict[str, str] = {}
        if (fields.get("project") or {}).get("key") != self.project:
            errors["project"] = "valid project is required"
        if not fields.get("summary"):
            errors["summary"] = "You must specify a summary of the issue."
        elif len(fields["summary"]) > 255:
            errors["summary"] = "Summary must be less than 255 characters."
        if not (fields.get("issuetype") or {}).get("name") and not (fields.get("issuetype") or {}).get("id"):
            errors["issuetype"] = "valid issue type is required"
        if "description" in fields and not self._text_ok(m["v"], fields["description"]):
            errors["description"] = (
                "Operation value must be an Atlassian Document"
                if m["v"] == "3"
                else "Operation value must be a string"
            )
        if any(" " in lb for lb in fields.get("labels", [])):
            errors["labels"] = "The label can't contain spaces."
        if errors:
            return self.violation(f"create: {errors}", reply({"errorMessages": [], "errors": errors}, 400))
        n = next(self._n)
        key = f"{self.project}-{n}"
        self.issues[key] = {
            "id": str(10000 + n),
            "key": key,
            "self": f"{self.url}/rest/api/{m['v']}/issue/{10000 + n}",
            "fields": {**fields, "status": self._status("new")},
        }
        self.comments[key] = []
        return reply({"id": str(10000 + n), "key": key, "self": self.issues[key]["self"]}, 201)

    def _status(self, category: str) -> dict[str, Any]:
        name = {"new": "To Do", "indeterminate": "In Progress", "done": "Done"}[category]
        return {"name": name, "statusCategory": {"key": category}}

    def search(self, req: Request, m: re.Match[str]) -> Response:
        jql = req.args.get("jql", "")
        q = re.fullmatch(r'project = "(\w+)" AND labels = "([\w-]+)" ORDER BY created DESC', jql)
        if q is None:
            return self.violation(
                f"unexpected JQL {jql!r}", reply({"errorMessages": ["Error in the JQL Query"]}, 400)
            )
        wanted = [f for f in req.args.get("fields", "").split(",") if f]
        found = [
            {"id": i["id"], "key": i["key"], "fields": {k: v for k, v in i["fields"].items() if k in wanted}}
            for i in sorted(self.issues.values(), key=lambda i: -int(i["id"]))
            if i["fields"]["project"]["key"] == q[1] and q[2] in i["fields"].get("labels", [])
        ]
        return reply({"issues": found, "isLast": True})

    def search_removed(self, req: Request, m: re.Match[str]) -> Response:
        return self.violation(
            "removed /search endpoint used",
            reply(
                {
                    "errorMessages": [
                        "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API."
                    ]
                },
                410,
            ),
        )

    def get_issue(self, req: Request, m: re.Match[str]) -> Response:
        issue = self.issues.get(m["k"])
        if issue is None:
            return reply(
                {
                    "errorMessages": ["Issue does not exist or you do not have permission to see it."],
                    "errors": {},
                },
                404,
            )
        return reply(issue)

    def add_comment(self, req: Request, m: re.Match[str]) -> Response:
        if m["k"] not in self.issues:
            return reply(
                {
                    "errorMessages": ["Issue does not exist or you do not have permission to see it."],
                    "errors": {},
                },
                404,
            )
        body = (req.get_json(silent=True) or {}).get("body")
        if not self._text_ok(m["v"], body):
            return self.violation(
                "comment body of the wrong type",
                reply({"errorMessages": [], "errors": {"comment": "Comment body can not be empty!"}}, 400),
            )
        self.comments[m["k"]].append(body)
        return reply({"id": str(len(self.comments[m["k"]])), "body": body}, 201)

    def get_transitions(self, req: Request, m: re.Match[str]) -> Response:
        if m["k"] not in self.issues:
            return reply({"errorMessages": ["Issue does not exist"], "errors": {}}, 404)
        return reply({"transitions": TRANSITIONS})

    def do_transition(self, req: Request, m: re.Match[str]) -> Response:
        tid = ((req.get_json(silent=True) or {}).get("transition") or {}).get("id")
        chosen = next((t for t in TRANSITIONS if t["id"] == tid), None)
        if m["k"] not in self.issues or chosen is None:
            return self.violation(
                f"bad transition {tid!r}",
                reply({"errorMessages": ["Transition id is not valid"], "errors": {}}, 400),
            )
        self.issues[m["k"]]["fields"]["status"] = self._status(chosen["to"]["statusCategory"]["key"])
        return Response(status=204)

    def close_as_a_person(self, key: str) -> None:
        self.issues[key]["fields"]["status"] = self._status("done")

    def is_closed(self, key: str) -> bool:
        return bool(self.issues[key]["fields"]["status"]["statusCategory"]["key"] == "done")


# -- ServiceNow --------------------------------------------------------------------------------------
class FakeServiceNow(FakeTracker):
    """Table API (``/api/now/table/{tableName}``) on the incident table."""

    routes: ClassVar[list[tuple[str, str, str]]] = [
        ("GET", r"/api/now/table/incident", "query"),
        ("POST", r"/api/now/table/incident", "create"),
        ("GET", r"/api/now/table/incident/(?P<id>[0-9a-f]{32})", "get"),
        ("PATCH", r"/api/now/table/incident/(?P<id>[0-9a-f]{32})", "patch"),
    ]

    def __init__(
        self, server: HTTPServer, user: str = "knownfix.integration", password: str = "Sn0w!pass-test"
    ) -> None:
        super().__init__(server)
        self.user, self.password = user, password
        self.records: dict[str, dict[str, Any]] = {}
        self.journal: dict[str, list[tuple[str, str]]] = {}
        self._n = itertools.count(10001)

    def authenticate(self, request: Request) -> Response | None:
        if request.headers.get("Authorization") != basic(self.user, self.password):
            return reply(
                {
                    "error": {
                        "message": "User Not Authenticated",
                        "detail": "Required to provide Auth information",
                    },
                    "status": "failure",
                },
                401,
            )
        if request.method in ("POST", "PATCH", "PUT") and "application/json" not in request.headers.get(
            "Content-Type", ""
        ):
            return self.violation(
                "write without JSON content type",
                reply({"error": {"message": "Unsupported Media Type"}, "status": "failure"}, 415),
            )
        if "application/json" not in request.headers.get("Accept", ""):
            self.violations.append("Accept: application/json missing (the instance would answer XML)")
        return None

    def _fields(self, req: Request, rec: dict[str, Any]) -> dict[str, Any]:
        wanted = [f for f in req.args.get("sysparm_fields", "").split(",") if f]
        return {k: v for k, v in rec.items() if not wanted or k in wanted}

    def query(self, req: Request, m: re.Match[str]) -> Response:
        q = re.fullmatch(
            r"correlation_id=([\w-]+)\^ORDERBYDESCsys_created_on", req.args.get("sysparm_query", "")
        )
        if q is None:
            return self.violation("unexpected sysparm_query", reply({"result": []}))
        found = [
            self._fields(req, r)
            for r in sorted(self.records.values(), key=lambda r: r["number"], reverse=True)
            if r["correlation_id"] == q[1]
        ]
        return reply({"result": found[: int(req.args.get("sysparm_limit", "10000"))]})

    def create(self, req: Request, m: re.Match[str]) -> Response:
        body = req.get_json(silent=True) or {}
        if not body.get("short_description"):
            return self.violation(
                "incident without short_description",
                reply({"error": {"message": "Mandatory field missing"}, "status": "failure"}, 400),
            )
        sys_id = hashlib.md5(str(len(self.records)).encode()).hexdigest()
        rec = {
            "sys_id": sys_id,
            "number": f"INC00{next(self._n)}",
            "state": "1",
            "short_description": body["short_description"][:160],
            "description": body.get("description", ""),
            "correlation_id": body.get("correlation_id", ""),
            "correlation_display": body.get("correlation_display", ""),
            "urgency": body.get("urgency", "3"),
            "impact": body.get("impact", "3"),
        }
        self.records[sys_id] = rec
        self.journal[sys_id] = []
        return reply(
            {"result": self._fields(req, rec)},
            201,
            {"Location": f"{self.url}/api/now/table/incident/{sys_id}"},
        )

    def get(self, req: Request, m: re.Match[str]) -> Response:
        rec = self.records.get(m["id"])
        if rec is None:
            return reply(
                {
                    "error": {
                        "message": "No Record found",
                        "detail": "Record doesn't exist or ACL restricts the record retrieval",
                    },
                    "status": "failure",
                },
                404,
            )
        return reply({"result": self._fields(req, rec)})

    def patch(self, req: Request, m: re.Match[str]) -> Response:
        rec = self.records.get(m["id"])
        if rec is None:
            return reply({"error": {"message": "No Record found"}, "status": "failure"}, 404)
        body = req.get_json(silent=True) or {}
        if rec["state"] in ("7", "8"):
            return reply(
                {
                    "error": {
                        "message": "Operation Failed",
                        "detail": "ACL Exception Update Failed due to security constraints",
                    },
                    "status": "failure",
                },
                403,
            )
        if body.get("state") == "6" and not (body.get("close_code") and body.get("close_notes")):
            return self.violation(
                "resolved without close_code/close_notes",
                reply(
                    {
                        "error": {
                            "message": "Operation Failed",
                            "detail": "Data Policy Exception: The following fields are mandatory: Resolution code, Resolution notes",
                        },
                        "status": "failure",
                    },
                    403,
                ),
            )
        for f in ("work_notes", "comments", "close_notes"):
            if body.get(f):
                self.journal[m["id"]].append((f, body[f]))
        rec.update({k: v for k, v in body.items() if k in ("state", "close_code", "close_notes")})
        return reply({"result": self._fields(req, rec)})

    def close_as_a_person(self, sys_id: str, state: str = "7") -> None:
        self.records[sys_id]["state"] = state


# -- webhook receiver --------------------------------------------------------------------------------
class FakeWebhook(FakeTracker):
    """A receiver that checks the HMAC signature and keeps the events it accepted."""

    routes: ClassVar[list[tuple[str, str, str]]] = [("POST", r"/hooks/knownfix", "receive")]

    def __init__(self, server: HTTPServer, secret: str | None = "whsec-test-5b1f") -> None:
        super().__init__(server)
        self.secret = secret
        self.events: list[dict[str, Any]] = []
        self.idempotency_keys: list[str] = []

    def receive(self, req: Request, m: re.Match[str]) -> Response:
        raw = req.get_data()
        if req.headers.get("Content-Type") != "application/json":
            return self.violation("not JSON", reply({"error": "json only"}, 415))
        if self.secret is not None:
            ts = req.headers.get(TIMESTAMP_HEADER, "")
            want = (
                "sha256="
                + hmac.new(self.secret.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
            )
            if not hmac.compare_digest(want, req.headers.get(SIGNATURE_HEADER, "")):
                return self.violation("bad signature", reply({"error": "bad signature"}, 401))
        key = req.headers.get("Idempotency-Key", "")
        self.idempotency_keys.append(key)
        if key in {e["_key"] for e in self.events}:
            return reply({"ok": True, "duplicate": True})
        self.events.append({**json.loads(raw), "_key": key})
        return reply({"ok": True}, 202)

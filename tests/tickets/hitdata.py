"""Rule hits as the rule engine writes them, for the ticket tests (real rows in a real Delta table).

The signature is seed 000 (../shared/seeds): an Exchange 2016 hybrid server whose send connector
"Outbound to Office 365" fails STARTTLS with ``TLS negotiation failed with error
UnknownCredentials`` because the transport service cannot read the certificate's private key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import pyarrow as pa

from tickets.clock import ManualClock
from warehouse.hits import HITS_SCHEMA, HITS_TABLE
from warehouse.store import Warehouse

RULE_ID = "exchange.smtp.tls-unknown-credentials"
RULE_TITLE = "Hybrid send connector: TLS negotiation failed with error UnknownCredentials"
LOG = r"\\ex01\TransportRoles\Logs\Hub\ProtocolLog\SmtpSend\SEND20160719-1.LOG"
LINES = [
    "2016-07-19T12:13:15.145Z,Outbound to Office 365,08D3AFC581A92DD3,8,,,*,,TLS negotiation failed with error UnknownCredentials",
    "2016-07-19T12:13:15.051Z,Outbound to Office 365,08D3AFC581A92DD4,5,,,>,STARTTLS,",
]
#: a line an attacker controls (the remote end chooses its EHLO banner): must stay text in tickets
HOSTILE = (
    '2016-07-19T12:14:02.001Z,Outbound to Office 365,08D3AFC581A92DD9,2,,,<,"220 <script>alert(1)</script> '
    '*bold* _it_ </pre> {noformat} [code]<b>x</b>[/code] ``` @admin #1 [[Wiki]] commit:abc h1. big",'
)
FIX = {
    "summary": "The Microsoft Exchange Transport service cannot use the certificate's private key.",
    "causes": [
        {
            "cause": "NETWORK SERVICE lost read access to the private key of the TLS certificate",
            "check": "certlm.msc > Personal > Certificates > the connector's certificate > All Tasks > Manage Private Keys",
            "steps": [
                "Grant NETWORK SERVICE Read on the certificate's private key",
                "Restart the Microsoft Exchange Transport service",
                "Send a test message to Exchange Online and check the SmtpSend log",
            ],
            "commands": [
                'Get-ExchangeCertificate | where {$_.Services -match "SMTP"} | fl Thumbprint,Subject,NotAfter',
                "Restart-Service MSExchangeTransport",
            ],
        }
    ],
}
REFS = ["https://learn.microsoft.com/exchange/mail-flow/connectors/send-connectors"]
QUERY = (
    "select * from smtp where context = 'TLS negotiation failed with error UnknownCredentials' "
    "and connector_id = 'Outbound to Office 365'"
)


def sample(text: str, offset: int, line: int) -> dict[str, Any]:
    return {"source_file": LOG, "source_offset": offset, "line_number": line, "text": text}


class Hits:
    """Appends hits rows (one commit per call, like one rule-engine run) and advances the clock."""

    def __init__(self, wh: Warehouse, clock: ManualClock) -> None:
        self.wh = wh
        self.clock = clock
        self.n = 0
        self.total: dict[str, int] = {}  # occurrences per dedup key
        self.counts: dict[str, int] = {}  # hits (rows) per dedup key

    def add(self, group: str = "connector=Outbound to Office 365", **kw: Any) -> dict[str, Any]:
        """One hit of ``group`` in a commit of its own; ``kw`` as for ``row``."""
        row = self.row(group, **kw)
        self.append([row])
        return row

    def row(
        self,
        group: str = "connector=Outbound to Office 365",
        *,
        count: int = 1,
        lines: list[str] | None = None,
        rule_id: str = RULE_ID,
        hit_id: str | None = None,
    ) -> dict[str, Any]:
        self.n += 1
        now = self.clock.now()
        texts = lines if lines is not None else [LINES[0]]
        offset = 4096 * self.n
        key = f"{rule_id}|{group}"
        return {
            "hit_id": hit_id or hashlib.sha256(f"{key}|{self.n}".encode()).hexdigest()[:32],
            "rule_id": rule_id,
            "rule_title": RULE_TITLE,
            "severity": "high",
            "kind": "signature",
            "table_name": "smtp",
            "group_key": group,
            "dedup_key": key,
            "first_seen": now - dt.timedelta(seconds=30),
            "last_seen": now,
            "count": count,
            "samples": [sample(t, offset + 200 * i, 10 * self.n + i) for i, t in enumerate(texts)],
            "fix_summary": FIX["summary"],
            "fix_json": json.dumps(FIX),
            "references": REFS,
            "query": QUERY,
            "detected_at": now,
        }

    def append(self, rows: list[dict[str, Any]]) -> int:
        for r in rows:
            self.total[r["dedup_key"]] = self.total.get(r["dedup_key"], 0) + r["count"]
            self.counts[r["dedup_key"]] = self.counts.get(r["dedup_key"], 0) + 1
        return self.wh.append(HITS_TABLE, pa.Table.from_pylist(rows, schema=HITS_SCHEMA))


def key(group: str = "connector=Outbound to Office 365", rule_id: str = RULE_ID) -> str:
    return f"{rule_id}|{group}"

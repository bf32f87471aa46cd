"""The Hybrid Configuration Wizard log (``%AppData%\\Microsoft\\Exchange Hybrid Configuration``).

Two real layouts, both with multi-line entries (exception text and stack traces follow the line
that opened the entry, indented):

* legacy (Exchange 2013/2016-era wizard)::

    [07/19/2016 12:13:14]    INFO : Session=Tenant Cmdlet=Set-OnPremisesOrganization -HybridDomains {} ... START
    [07/19/2016 12:13:15]    INFO : Session=Tenant Cmdlet=Set-OnPremisesOrganization FINISH Time=781.2552ms
    [07/19/2016 12:13:15]   ERROR : Subtask Configure execution failed: Configure Mail Flow
                                    Execution of the Set-OnPremisesOrganization cmdlet has thrown an exception...

  (blog posts quote it without the ``[time]`` prefix; such lines are accepted, time left empty);
* the Office 365 wizard (16.x)::

    2017.10.23 11:39:57.693 *ERROR* 10277 [Client=UX, Activity=Domain Ownership, Session=OnPremises, Cmdlet=Set-FederatedOrganizationIdentifier, Thread=9] FINISH Time=6140.9ms Results=PowerShell failed ...

Why a ``FileParser``: an entry ends only when the next one starts, so a stream parser cannot emit
the last entry of a chunk, and a finished log (the wizard writes one file per run and stops) would
keep its final entry forever unemitted; carrying it in the parser state would also let a
checkpoint pass lines whose row was never committed. Reading the file line by line to its end
(memory of one entry) avoids both. Times are the wizard machine's local time (``timezone``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from parsers.base import SOURCE_FIELDS, TIMESTAMP, Reject
from parsers.sync_errors_common import RecordFileParser, parse_time
from parsers.text import Line, read_lines, sniff_text

TABLE = "hybrid_wizard"

SCHEMA = pa.schema(
    [
        pa.field("time", TIMESTAMP),
        pa.field("level", pa.string()),
        pa.field("session", pa.string()),
        pa.field("cmdlet", pa.string()),
        pa.field("parameters", pa.string()),
        pa.field("subtask", pa.string()),
        pa.field("step", pa.string()),
        pa.field("action", pa.string()),
        pa.field("result", pa.string()),
        pa.field("duration_ms", pa.float64()),
        pa.field("event_id", pa.int64()),
        pa.field("thread", pa.string()),
        pa.field("context", pa.string()),
        pa.field("message", pa.string()),
        *SOURCE_FIELDS,
    ]
)

_MODERN = re.compile(
    r"^(?P<ts>\d{4}\.\d{2}\.\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?)\s+(?P<level>\*ERROR\*|ERROR|WARNING|WARN|VERBOSE|INFO)?"
    r"\s*(?P<eid>\d+)\s+\[(?P<ctx>[^\]]*)\]\s?(?P<msg>.*)$"
)
_LEGACY = re.compile(r"^\[(?P<ts>[^\]]+)\]\s+(?P<level>[A-Z]+)\s*:\s?(?P<msg>.*)$")
_BARE = re.compile(r"^(?P<level>INFO|ERROR|WARNING|WARN|VERBOSE)\s*:\s(?P<msg>.*)$")
_CMDLET = re.compile(r"^Session=(?P<session>\S+)\s+Cmdlet=(?P<cmdlet>[\w-]+)\s*(?P<rest>.*?)\s*$")
_ACTION = re.compile(r"(?:^|\s)(START|FINISH)(?:\s|$)")
_TASK = re.compile(r"Task='(?P<task>[^']*)'(?:\s+Step='(?P<step>[^']*)')?")
_SUBTASK = re.compile(r"Subtask (?P<step>\S+) execution failed: (?P<task>.+)$")
_DURATION = re.compile(r"\bTime=(\d+(?:\.\d+)?)ms\b")
_FAILED_CMDLET = re.compile(r"Execution of the ([\w-]+) cmdlet")
_RESULT = re.compile(r"\bResults?=(.*)$")


def _context(text: str) -> dict[str, str]:
    pairs = (part.split("=", 1) for part in text.split(", ") if "=" in part)
    return {k.strip(): v.strip() for k, v in pairs}


class HybridWizardParser(RecordFileParser):
    table: ClassVar[str] = TABLE
    schema: ClassVar[pa.Schema] = SCHEMA
    name: ClassVar[str] = "hybrid_wizard"

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        lines = (sniff_text(head) or "").splitlines()[:200]
        hits = sum(
            1
            for ln in lines
            if _MODERN.match(ln) or ((_LEGACY.match(ln) or _BARE.match(ln)) and _hcw_words(ln))
        )
        return 90 if hits >= 1 and any(_hcw_words(ln) for ln in lines) else 0

    def _items(self, path: Path, source: str) -> Iterator[dict[str, object] | Reject]:
        entry: list[Line] = []
        for line in read_lines(path):
            if _MODERN.match(line.text) or _LEGACY.match(line.text) or _BARE.match(line.text):
                if entry:
                    yield self._entry(entry, source)
                entry = [line]
            elif entry:
                entry.append(line)
            elif line.text.strip():
                yield Reject(
                    source, line.offset, line.number, self.name, "text before the first log entry", line.text
                )
        if entry:
            yield self._entry(entry, source)

    def _entry(self, lines: list[Line], source: str) -> dict[str, object] | Reject:
        first = lines[0]
        raw = "\n".join(ln.text for ln in lines).rstrip()
        if not all(ln.valid for ln in lines):
            return Reject(source, first.offset, first.number, self.name, "entry is not valid UTF-8 text", raw)
        row: dict[str, object] = dict.fromkeys(SCHEMA.names)
        m = _MODERN.match(first.text)
        if m:
            ctx = _context(m.group("ctx"))
            row.update(
                event_id=int(m.group("eid")),
                context=m.group("ctx"),
                session=ctx.get("Session"),
                cmdlet=ctx.get("Cmdlet"),
                subtask=ctx.get("Task") or ctx.get("Activity"),
                step=ctx.get("Phase"),
                thread=ctx.get("Thread"),
            )
        else:
            m = _LEGACY.match(first.text) or _BARE.match(first.text)
            assert m is not None
        stamp = m.groupdict().get("ts")
        time = parse_time(stamp, self.options.timezone) if stamp else None
        if stamp and time is None:
            return Reject(source, first.offset, first.number, self.name, f"unreadable time [{stamp}]", raw)
        msg = m.group("msg").strip()
        level = (m.group("level") or "INFO").strip("*")
        row["time"], row["level"] = time, "WARNING" if level == "WARN" else level
        _describe(msg, row)
        more = [ln.text.strip() for ln in lines[1:]]
        row["message"] = "\n".join([msg, *more]).strip()
        failed = _FAILED_CMDLET.search(str(row["message"]))
        if failed and not row.get("cmdlet"):
            row["cmdlet"] = failed.group(1)  # "Execution of the Set-X cmdlet has thrown an exception"
        row.update(source_file=source, source_offset=first.offset, line_number=first.number)
        return row


def _hcw_words(line: str) -> bool:
    return any(w in line for w in ("Session=", "Cmdlet=", "Subtask", "Task=", "[Client=", "Hybrid"))


def _describe(msg: str, row: dict[str, object]) -> None:
    """Fill cmdlet, parameters, action, task, duration and result from the entry's first line."""
    cmd = _CMDLET.match(msg)
    rest = msg
    if cmd:
        row["session"], row["cmdlet"], rest = cmd.group("session"), cmd.group("cmdlet"), cmd.group("rest")
    action = _ACTION.search(msg)
    if action:
        row["action"] = action.group(1)
        if action.group(1) == "START":
            before, _, after = rest.partition("START")
            params = before.strip() if cmd else after.strip()
            if not cmd and row.get("cmdlet") and params.startswith(str(row["cmdlet"])):
                params = params[len(str(row["cmdlet"])) :].strip()
            row["parameters"] = params or None
    task = _TASK.search(msg) or _SUBTASK.search(msg)
    if task:
        row["subtask"], row["step"] = task.group("task"), task.group("step")
    duration = _DURATION.search(msg)
    if duration:
        row["duration_ms"] = float(duration.group(1))
    result = _RESULT.search(msg)
    if result:
        row["result"] = result.group(1).split(" Time=")[0].strip()

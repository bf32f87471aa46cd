"""Back-pressure, rules after every commit, W3C logs across restarts, and the identity rules."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ingest.identity import FINGERPRINT_BYTES, Registry, load_registry
from ingest.settings import SourceConfig
from knownfix.config import Config
from knownfix.context import Context
from tests.tail.helpers import Running, append, assert_exactly_once, has_all, ids, lines, settings, wait_until
from warehouse.commit import CommitSummary
from warehouse.query import run
from warehouse.store import Warehouse

# The SMTP send header of Exchange 2016 and the failure line of seed 000 (TLS negotiation failed
# with error UnknownCredentials on the hybrid send connector).
SEND_HEADER = (
    "#Software: Microsoft Exchange Server\r\n#Version: 15.01.0225.042\r\n#Log-type: SMTP Send Protocol Log\r\n"
    "#Date: 2016-07-19T12:13:14.863Z\r\n"
    "#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context\r\n"
)


def _session(n: int) -> str:
    sid = f"08D3AFC581A9{n:04X}"
    return (
        f"2016-07-19T12:13:14.910Z,Outbound to Office 365,{sid},1,10.0.0.5:21841,104.47.1.36:25,+,,\r\n"
        f"2016-07-19T12:13:15.004Z,Outbound to Office 365,{sid},2,10.0.0.5:21841,104.47.1.36:25,>,STARTTLS,\r\n"
        f'2016-07-19T12:13:15.051Z,Outbound to Office 365,{sid},3,10.0.0.5:21841,104.47.1.36:25,<,"220 2.0.0 SMTP server ready",\r\n'
    )


RULE = "exchange-tls-unknown-credentials"


def _failure(n: int) -> str:
    return (
        f"2016-07-19T12:13:15.145Z,Outbound to Office 365 #{n},08D3AFC581A9{n:04X},4,,,*,,"
        "TLS negotiation failed with error UnknownCredentials\r\n"
    )


def test_a_slow_warehouse_slows_reading_and_loses_nothing(tmp_path: Path, warehouse: Warehouse) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    commits: list[int] = []

    def slow_consumer(summary: CommitSummary) -> None:  # inline, it makes every commit slow
        commits.append(summary.row_count)
        time.sleep(0.1)

    config = settings(batch_bytes=64 * 1024, chunk_bytes=16 * 1024)
    with Running(warehouse, logs, config, hook=slow_consumer, inline_hook=True) as tail:
        for part in range(10):
            append(logs / "busy.log", lines("b", part * 2000, (part + 1) * 2000))  # 1.3 MB in all
        wait_until(has_all(warehouse, ids("b", 0, 20_000)), "every line under back-pressure", timeout=60)
        high_water = tail.tailer.max_pending_bytes
    assert_exactly_once(warehouse, ids("b", 0, 20_000))
    bound = config.batch_bytes + config.chunk_bytes
    # the batch bound, not the backlog, decided the size of each commit
    assert len(commits) >= (logs / "busy.log").stat().st_size // bound
    assert high_water <= bound


def test_a_failure_line_becomes_a_hit_within_seconds(tmp_path: Path, warehouse: Warehouse) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    hook = Context(Config(), warehouse).after_commit()  # the rule evaluation `knownfix tail` runs
    assert hook is not None
    log = logs / "SEND20160719-1.LOG"
    with Running(warehouse, logs, hook=hook):
        append(log, SEND_HEADER + _session(1))
        wait_until(lambda: "smtp" in Warehouse(warehouse.root).table_names(), "the smtp table")
        written = time.monotonic()
        append(
            log,
            "2016-07-19T12:13:15.145Z,Outbound to Office 365,08D3AFC581A90001,4,,,*,,"
            "TLS negotiation failed with error UnknownCredentials\r\n",
        )

        def hit() -> bool:
            if "hits" not in Warehouse(warehouse.root).table_names():
                return False
            found = run(warehouse, "select rule_id from hits").column(0).to_pylist()
            return "exchange-tls-unknown-credentials" in found

        wait_until(hit, "the rule's hit", timeout=10)
        assert time.monotonic() - written < 5


def test_w3c_header_repeated_after_restarts_keeps_columns_and_counts(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "SEND20160719-1.LOG"
    append(log, SEND_HEADER + "".join(_session(n) for n in range(0, 50)))
    with Running(warehouse, logs):
        wait_until(lambda: _smtp_rows(warehouse) == 150, "first part")
    # tailer stopped; the transport service restarted too and wrote its header again mid-file
    append(
        log,
        "".join(_session(n) for n in range(50, 60))
        + SEND_HEADER
        + "".join(_session(n) for n in range(60, 80)),
    )
    with Running(warehouse, logs):
        wait_until(lambda: _smtp_rows(warehouse) >= 240, "after restart")
    got = run(
        warehouse,
        "select count(*) n, count(distinct session_id || '/' || sequence_number) k, "
        "count(*) filter (where event is null or connector_id is null) broken from smtp",
    ).to_pylist()[0]
    assert got == {"n": 240, "k": 240, "broken": 0}
    assert "rejects" not in Warehouse(warehouse.root).table_names()
    headers = (
        run(warehouse, "select count(*) from directives where directive = 'Fields'").column(0)[0].as_py()
    )
    assert headers == 2


def _smtp_rows(wh: Warehouse) -> int:
    if "smtp" not in Warehouse(wh.root).table_names():
        return 0
    return int(run(wh, "select count(*) from smtp").column(0)[0].as_py())


def test_registry_generations_and_short_prefixes() -> None:
    reg = Registry()
    small = reg.create(b"id=1 tiny\n", "a.log")
    assert small.fp_len == 10 and small.file_id == reg.by_id[small.file_id].file_id
    small.advance(0, b"id=1 tiny\n")
    small.advance(10, b"id=2 grown " + b"x" * 2000 + b"\n")  # the file grew past the fingerprint
    reg.refresh(small)
    assert small.fp_len == FINGERPRINT_BYTES
    grown = b"id=1 tiny\nid=2 grown " + b"x" * 2000 + b"\n"
    assert reg.candidates(grown[:FINGERPRINT_BYTES]) == [small]
    again = reg.create(b"id=1 tiny\n", "a.log")  # same first bytes, new content: a new generation
    assert again.file_id == f"{small.file_id}~1"
    assert reg.create(b"id=1 tiny\n", "a.log").file_id == f"{small.file_id}~2"
    assert reg.candidates(b"id=1 tiny\nmore") == [again, reg.by_id[f"{small.file_id}~2"]]


def test_identity_evidence_survives_a_restart(tmp_path: Path, warehouse: Warehouse) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    append(logs / "a.log", lines("e", 0, 30))
    with Running(warehouse, [SourceConfig(path=logs)]):
        wait_until(has_all(warehouse, ids("e", 0, 30)), "lines")
    reg = load_registry(warehouse)
    (ident,) = reg.by_id.values()
    data = (logs / "a.log").read_bytes()
    assert ident.position == len(data) and ident.fp_len == FINGERPRINT_BYTES
    from ingest.identity import digest

    assert ident.tail == digest(data[-128:]) and ident.fingerprint == digest(data[:FINGERPRINT_BYTES])


def test_ingest_then_tail_share_identities_and_read_nothing_twice(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    from ingest.backfill import ingest_paths

    logs = tmp_path / "logs"
    logs.mkdir()
    append(logs / "a.log", lines("i", 0, 200))
    append(logs / "tiny.log", "id=tiny1 small\n")
    assert ingest_paths(warehouse, [logs]).row_count == 201
    append(logs / "a.log", lines("i", 200, 250))
    append(logs / "tiny.log", "id=tiny2 grown\n")
    os.rename(logs / "a.log", logs / "a.log.1")  # rotated between the two runs
    with Running(warehouse, logs):
        wait_until(has_all(warehouse, ids("i", 200, 250) | {"tiny2"}), "lines added after ingest")
    assert_exactly_once(warehouse, ids("i", 0, 250) | {"tiny1", "tiny2"})


def test_every_failure_line_becomes_a_hit_while_commits_keep_coming(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    """Rule runs overlap the reading: the rows of every commit are evaluated, none skipped."""
    logs = tmp_path / "logs"
    logs.mkdir()
    hook = Context(Config(), warehouse).after_commit()
    log = logs / "SEND20160719-2.LOG"
    append(log, SEND_HEADER)
    per = 3 * 700 + 1
    with Running(warehouse, logs, settings(commit_interval=0.0), hook=hook) as tail:
        for n in range(20):
            append(log, "".join(_session(n * 1000 + k) for k in range(700)) + _failure(n))
            commits = tail.tailer.book.totals.commits
            wait_until(lambda c=commits: tail.tailer.book.totals.commits > c, "a commit")  # one per append
        wait_until(lambda: _smtp_rows(warehouse) == 20 * per, "every row")
    hits = run(warehouse, "select count(*) from hits where rule_id = ?", [RULE]).column(0)[0].as_py()
    assert hits == 20  # the clean stop lets the last rule run finish

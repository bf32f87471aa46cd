"""Incremental evaluation over real Exchange send logs: watermarks, windows across batches, no repeats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rules.evaluator import Evaluator, watermark_app_id
from rules.loader import load_rules
from tests.rules.helpers import (
    FIX,
    SEND_HEADER,
    ingest_evaluating,
    load_only,
    rules_file,
    smtp_line,
    unknown_credentials,
)
from warehouse.hits import HITS_SCHEMA, HITS_TABLE
from warehouse.query import run
from warehouse.store import Warehouse

PLAIN = (
    "rules:\n"
    "  - id: plain-unknown-credentials\n"
    "    title: UnknownCredentials\n"
    "    table: smtp\n"
    "    match: {tls_error: UnknownCredentials}\n"
    "    group_by: [connector_id]\n" + FIX
)
BURST = (
    "rules:\n"
    "  - id: burst\n"
    "    title: many UnknownCredentials\n"
    "    table: smtp\n"
    "    match: {context|contains: UnknownCredentials}\n"
    "    group_by: [connector_id]\n"
    "    threshold: {count: 40, window: 1m}\n" + FIX
)


def hits(wh: Warehouse) -> list[dict[str, object]]:
    return run(wh, "select * from hits order by rule_id, first_seen, group_key").to_pylist()


def test_plain_rule_hits_carry_the_fix_samples_and_the_query(tmp_path: Path, warehouse: Warehouse) -> None:
    log = tmp_path / "SEND20160719-1.LOG"
    log.write_text(
        SEND_HEADER + smtp_line(1, "") + unknown_credentials(2) + unknown_credentials(3, connector="Internet")
    )
    ingest_evaluating(warehouse, [log], load_only(rules_file(tmp_path, PLAIN)))
    found = hits(warehouse)
    assert [(h["group_key"], h["count"]) for h in found] == [
        ("connector_id=Outbound to Office 365", 1),
        ("connector_id=Internet", 1),
    ]
    hit = found[0]
    assert (
        hit["kind"] == "signature"
        and hit["dedup_key"] == "plain-unknown-credentials|connector_id=Outbound to Office 365"
    )
    assert json.loads(hit["fix_json"])["causes"][0]["check"] == "a check"
    assert hit["samples"][0]["source_file"] == str(log) and hit["samples"][0]["line_number"] == 7
    assert "UnknownCredentials" in hit["samples"][0]["text"]
    rows = run(warehouse, hit["query"]).to_pylist()  # the ticket's SQL shows exactly the matching rows
    assert [r["source_offset"] for r in rows] == [hit["samples"][0]["source_offset"]]
    assert run(warehouse, "select * from hits").column_names == [*HITS_SCHEMA.names, "_version"]


def test_dedup_key_uses_the_fields_dedup_by_names(tmp_path: Path, warehouse: Warehouse) -> None:
    rule = PLAIN.replace(
        "group_by: [connector_id]", "group_by: [connector_id, session_id]\n    dedup_by: [connector_id]"
    )
    log = tmp_path / "SEND.LOG"
    log.write_text(SEND_HEADER + unknown_credentials(1) + unknown_credentials(2))
    ingest_evaluating(warehouse, [log], load_only(rules_file(tmp_path, rule)))
    found = hits(warehouse)
    assert len({h["group_key"] for h in found}) == 2  # two sessions, two entities ...
    assert {h["dedup_key"] for h in found} == {
        "plain-unknown-credentials|connector_id=Outbound to Office 365"
    }  # one ticket


def test_only_new_rows_are_evaluated_and_the_watermark_rides_with_the_hits(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    rs = load_only(rules_file(tmp_path, PLAIN))
    log = tmp_path / "SEND.LOG"
    log.write_text(SEND_HEADER + unknown_credentials(1))
    evaluator = ingest_evaluating(warehouse, [log], rs)
    smtp_version = warehouse.table("smtp", refresh=True).version()  # type: ignore[union-attr]
    assert warehouse.checkpoint(HITS_TABLE, watermark_app_id("smtp")) == smtp_version
    assert evaluator.evaluate(["smtp"]) == []  # nothing new: no scan at all
    with log.open("a") as f:
        f.write(unknown_credentials(5) + smtp_line(6, "") + unknown_credentials(7))
    ingest_evaluating(warehouse, [log], rs)
    found = hits(warehouse)
    assert [h["count"] for h in found] == [1, 2]  # the second run saw only its two new failures
    versions = run(warehouse, "select distinct _version from hits order by 1").column(0).to_pylist()
    assert len(versions) == 2  # one hits commit per evaluation ...
    latest = warehouse.table(HITS_TABLE, refresh=True)
    assert latest is not None and latest.version() >= versions[-1]  # ... carrying the watermark


def test_re_evaluating_the_same_rows_creates_no_new_hits(tmp_path: Path, warehouse: Warehouse) -> None:
    rs = load_only(rules_file(tmp_path, PLAIN))
    log = tmp_path / "SEND.LOG"
    log.write_text(SEND_HEADER + unknown_credentials(1) + unknown_credentials(2, connector="Internet"))
    ingest_evaluating(warehouse, [log], rs)
    before = hits(warehouse)
    runs = Evaluator(warehouse, rs).evaluate(rescan=True)
    assert len(runs[0].hits) == 2 and runs[0].written == 0
    assert [h["hit_id"] for h in hits(warehouse)] == [h["hit_id"] for h in before]


def test_a_threshold_window_carries_across_batches(tmp_path: Path, warehouse: Warehouse) -> None:
    rs = load_only(rules_file(tmp_path, BURST))
    log = tmp_path / "SEND.LOG"
    log.write_text(SEND_HEADER + "".join(unknown_credentials(s) for s in range(30)))
    ingest_evaluating(warehouse, [log], rs)
    assert hits(warehouse) == []  # 30 in the minute: not yet
    with log.open("a") as f:
        f.write("".join(unknown_credentials(s) for s in range(30, 45)))
    ingest_evaluating(warehouse, [log], rs)
    found = hits(warehouse)
    assert len(found) == 1
    assert found[0]["count"] == 45  # the window counted the first batch's rows too
    assert str(found[0]["first_seen"]).startswith("2016-07-19 12:13:00")
    with log.open("a") as f:  # a minute later, far from the others: below the threshold again
        f.write(unknown_credentials(30, minute=20))
    ingest_evaluating(warehouse, [log], rs)
    assert len(hits(warehouse)) == 1


def test_distinct_threshold_counts_values_not_rows(tmp_path: Path, warehouse: Warehouse) -> None:
    rule = BURST.replace(
        "threshold: {count: 40, window: 1m}", "threshold: {count: 3, window: 1m, distinct: session_id}"
    )
    rs = load_only(rules_file(tmp_path, rule.replace("group_by: [connector_id]", "group_by: []")))
    log = tmp_path / "SEND.LOG"
    same_session = "".join(unknown_credentials(1) for _ in range(5))
    log.write_text(SEND_HEADER + same_session + unknown_credentials(2))
    ingest_evaluating(warehouse, [log], rs)
    assert hits(warehouse) == []  # six rows, two sessions
    with log.open("a") as f:
        f.write(unknown_credentials(3))
    ingest_evaluating(warehouse, [log], rs)
    assert [h["count"] for h in hits(warehouse)] == [3]


CORRELATE = (
    "rules:\n"
    "  - id: tls-failed\n"
    "    title: TLS failed\n"
    "    table: smtp\n"
    "    match: {tls_error: UnknownCredentials}\n" + FIX + "  - id: queue-retry\n"
    "    title: next hop gave 421\n"
    "    table: smtp\n"
    "    match: {nested_reply_code: 421}\n" + FIX + "  - id: tls-then-queue\n"
    "    title: TLS failure followed by queued retries on the same connector\n"
    "    table: smtp\n"
    "    match: {tls_error: UnknownCredentials}\n"
    "    group_by: [connector_id]\n"
    "    correlate: {followed_by: queue-retry, within: 5m, on: [connector_id]}\n" + FIX
)
RETRY = '"451 4.4.0 Primary target IP address responded with: ""421 4.2.1 Unable to connect."""'


def retry_line(minute: int, connector: str = "Outbound to Office 365") -> str:
    return f"2016-07-19T12:{minute:02d}:30.000Z,{connector},08D3AFC581A92DFF,3,,,<,{RETRY},\r\n"


@pytest.mark.parametrize("together", [True, False])
def test_correlation_pairs_a_signature_with_a_later_one_on_the_same_key(
    tmp_path: Path, warehouse: Warehouse, together: bool
) -> None:
    rs = load_only(rules_file(tmp_path, CORRELATE))
    log = tmp_path / "SEND.LOG"
    first = SEND_HEADER + unknown_credentials(1, minute=13) + retry_line(14, connector="Internet")
    later = retry_line(15)  # same connector, 2 minutes after the failure
    log.write_text(first + (later if together else ""))
    ingest_evaluating(warehouse, [log], rs)
    if not together:
        assert sorted(h["rule_id"] for h in hits(warehouse)) == ["queue-retry", "tls-failed"]  # no pair yet
        with log.open("a") as f:
            f.write(later)
        ingest_evaluating(warehouse, [log], rs)
    pairs = [h for h in hits(warehouse) if h["rule_id"] == "tls-then-queue"]
    assert len(pairs) == 1
    assert pairs[0]["group_key"] == "connector_id=Outbound to Office 365" and pairs[0]["count"] == 1
    assert {s["line_number"] for s in pairs[0]["samples"]} == {6, 8}
    Evaluator(warehouse, rs).evaluate(rescan=True)  # found again from either side: still one hit
    assert len([h for h in hits(warehouse) if h["rule_id"] == "tls-then-queue"]) == 1


def test_correlation_respects_order_and_window(tmp_path: Path, warehouse: Warehouse) -> None:
    rs = load_only(rules_file(tmp_path, CORRELATE))
    log = tmp_path / "SEND.LOG"
    log.write_text(SEND_HEADER + retry_line(10) + unknown_credentials(1, minute=13) + retry_line(30))
    ingest_evaluating(warehouse, [log], rs)  # the retry came before, the next one 17 minutes after
    assert [h for h in hits(warehouse) if h["rule_id"] == "tls-then-queue"] == []


def test_sigma_rule_loads_as_a_detection_over_events(tmp_path: Path) -> None:
    from parsers.events_schema import EVENTS_SCHEMA, EVENTS_TABLE
    from rules.schema import TableSchema

    sigma = rules_file(
        tmp_path,
        "title: Schannel fatal alert bad certificate\n"
        "id: 6b1b8f2c-3f0e-4a6d-9d2c-1f0a5b7c9e11\n"
        "status: experimental\n"
        "references: [https://learn.microsoft.com/en-us/windows/win32/secauthn/schannel-error-codes-for-tls-and-ssl-alerts]\n"
        "logsource: {product: windows, service: system}\n"
        "detection:\n"
        "  selection:\n"
        "    Provider_Name: Schannel\n"
        "    EventID: [36887, 36888]\n"
        "    AlertDesc|contains: '4'\n"
        "  filter:\n"
        "    Computer|endswith: '.lab.local'\n"
        "  condition: selection and not filter\n"
        "level: high\n",
        "schannel.yml",
    )
    rs = load_rules([sigma], library=False, tables={EVENTS_TABLE: TableSchema(EVENTS_TABLE, EVENTS_SCHEMA)})
    assert not rs.problems, [str(p) for p in rs.problems]
    (rule,) = rs.rules
    assert (
        rule.kind == "detection" and rule.fix is None and rule.table == "events" and rule.severity == "high"
    )
    text = rule.match.model_dump_json()
    for column in ('"channel"', '"provider"', '"event_id"', '"event_data.AlertDesc"', '"computer"'):
        assert column in text


def test_hits_are_compacted_now_and_then_without_losing_hits_or_watermarks(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    from ingest.backfill import ingest_paths

    rs = load_only(rules_file(tmp_path, PLAIN))
    evaluator = Evaluator(warehouse, rs, compact_hits_every=3)
    log = tmp_path / "logs" / "SEND.LOG"
    log.parent.mkdir()
    log.write_text(SEND_HEADER)
    for i in range(9):
        with log.open("a") as f:
            f.write(unknown_credentials(5 * i + 1, connector=f"c{i}"))
        ingest_paths(warehouse, [log.parent])
        evaluator.evaluate(["smtp"])
    stored = warehouse.table(HITS_TABLE, refresh=True)
    assert stored is not None
    assert len(stored.file_uris()) < 9  # nine appends, merged by compaction
    assert sorted(h["group_key"] for h in hits(warehouse)) == [f"connector_id=c{i}" for i in range(9)]
    smtp_version = warehouse.table("smtp", refresh=True).version()  # type: ignore[union-attr]
    assert warehouse.checkpoint(HITS_TABLE, watermark_app_id("smtp")) == smtp_version
    assert evaluator.evaluate(["smtp"]) == []  # the watermark survived: nothing is evaluated again

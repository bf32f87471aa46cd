"""The W3C formats on real files and end to end: public samples, the bundled sample_logs/exchange
folder ingested into a warehouse and queried with DuckDB, and detection from content only.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ingest.backfill import ingest_paths
from parsers.registry import SNIFF_BYTES, detect
from parsers.w3c import W3CParser
from tests.conftest import SAMPLE_LOGS
from warehouse.query import run
from warehouse.store import Warehouse

EXCHANGE = SAMPLE_LOGS / "exchange"


def parse_file(path: Path) -> tuple[str, W3CParser, object]:
    data = path.read_bytes()
    parser_cls = detect(data[:SNIFF_BYTES], path)
    assert parser_cls is not None and issubclass(parser_cls, W3CParser)
    parser = parser_cls()
    result = parser.parse(data, source=path.name, base_offset=0, state=parser.new_state())
    return parser.name, parser, result


def test_public_smtp_receive_sample(shared_samples: Path) -> None:
    # origin: github Qazeer/artefacts.help, pages/others/microsoft_exchange.md (SmtpReceive logs);
    # an Exchange 2016 front end log with LF line ends and a repeated sequence number
    name, _, result = parse_file(
        shared_samples / "exchange" / "artefacts.help_RECV2023011116-1_AUTH_LOGIN_LogonDenied.LOG"
    )
    assert name == "exchange_smtp"
    assert result.reconciles() and result.rejects.num_rows == 0
    smtp = result.tables["smtp"].to_pylist()
    assert len(smtp) == 16 and len(result.tables["directives"]) == 5
    assert {r["direction"] for r in smtp} == {"receive"}
    assert [r["sequence_number"] for r in smtp].count(15) == 3
    cert = next(r for r in smtp if r["cert_thumbprint"])
    assert (cert["cert_subject"], cert["cert_serial"]) == (
        "CN=SERVER-HOSTNAME",
        "12DEABC6565646512346ABDC13456894",
    )
    assert (smtp[0]["remote_ip"], smtp[0]["remote_port"], smtp[0]["reply_code"]) == (
        "95.10.20.33",
        56026,
        220,
    )
    assert smtp[-2]["context"] == "Inbound AUTH LOGIN failed because of LogonDenied"
    assert not smtp[0]["raw"].endswith("\n") and smtp[0]["raw"].startswith("2023-01-11T15:59:51.433Z,")


def test_public_message_tracking_sample(shared_samples: Path) -> None:
    # origin: github elastic/beats, filebeat/tests/files/logs/bom8.log (Exchange 2010, UTF-8 BOM, CRLF)
    name, _, result = parse_file(shared_samples / "exchange" / "elastic-beats_bom8_MSGTRK_Exchange2010.LOG")
    assert name == "exchange_msgtrk"
    assert result.reconciles() and result.rejects.num_rows == 0
    table = result.tables["message_tracking"]
    assert table.num_rows == 2
    assert table.column_names[:3] == ["date_time", "client_ip", "client_hostname"]
    assert table.column_names[-5:] == ["custom_data", "raw", "source_file", "source_offset", "line_number"]
    first = table.to_pylist()[0]
    assert (first["source"], first["event_id"], first["total_bytes"]) == ("STOREDRIVER", "NOTIFYMAPI", None)
    assert first["source_context"].startswith("MDB:61914740-3f1b-4ddb-94e0-557196870cfa, Mailbox:")
    assert first["date_time"].isoformat() == "2016-04-05T00:00:02.052000+00:00"
    directives = result.tables["directives"].to_pylist()
    assert directives[0]["raw"] == "#Software: Microsoft Exchange Server"  # the BOM is not part of the text


def test_detection_reads_content_not_names(tmp_path: Path) -> None:
    smtp = EXCHANGE / "TransportRoles/Logs/Hub/ProtocolLog/SmtpSend/SEND20150912-1.LOG"
    renamed = tmp_path / "notes.txt"
    shutil.copy(smtp, renamed)
    fake = tmp_path / "MSGTRK20160719-1.LOG"
    fake.write_text("Transcript started, output file is C:\\Users\\admin\\transcript.txt\n")
    assert detect(renamed.read_bytes()[:SNIFF_BYTES], renamed).name == "exchange_smtp"  # type: ignore[union-attr]
    assert detect(fake.read_bytes()[:SNIFF_BYTES], fake).name == "lines"  # type: ignore[union-attr]
    iis = EXCHANGE / "inetpub/logs/LogFiles/W3SVC1/u_ex16071912.log"
    assert detect(iis.read_bytes()[:SNIFF_BYTES], iis).name == "w3c"  # type: ignore[union-attr]


def test_sample_logs_ingest_end_to_end(warehouse: Warehouse) -> None:
    stats = ingest_paths(warehouse, [EXCHANGE])
    assert stats.files_read == 6 and not stats.unreadable and not stats.skipped
    assert stats.records_read == stats.row_count + stats.rejects
    assert stats.rows["smtp"] == 50 + 37 + 51
    assert (
        stats.rows["message_tracking"],
        stats.rows["iis"],
        stats.rows["w3c_transport_connectivity_log"],
    ) == (5, 12, 8)
    assert stats.rejects == 6

    def one(sql: str) -> object:
        return run(warehouse, sql).to_pylist()[0]

    assert one("select count(*) as n from smtp where tls_error = 'UnknownCredentials'") == {"n": 3}
    assert one(
        "select count(*) as n from smtp where enhanced_status = '4.4.0' and nested_enhanced_status = '5.7.3' "
        "and nested_reply like '%Cannot achieve Exchange Server authentication%'"
    ) == {"n": 2}
    assert one("select count(distinct cert_thumbprint) as n from smtp") == {"n": 3}
    assert one(
        "select count(*) as n from smtp where remote_ip = '2001:db8:10::45' and remote_port = 50211"
    ) == {"n": 8}
    assert one("select sum(total_bytes) as b from message_tracking where event_id = 'SEND'") == {"b": 49871}
    assert one("select count(*) as n from iis where sc_status = '401'") == {"n": 2}
    assert one("select count(*) as n from directives where directive = 'Fields'") == {"n": 9}
    reasons = run(
        warehouse, "select line_number, reason from rejects order by source_file, line_number"
    ).to_pylist()
    assert {r["reason"].split(" (")[0].split(":")[0] for r in reasons} == {
        "expected 9 fields",
        "unterminated quoted field",
        "blank line",
        "bad date-time",
        "expected 30 fields",
        "expected 15 fields",
    }
    files = one("select sum(records_read) as read, sum(rows) as rows, sum(rejects) as rejects from files")
    assert files == {"read": stats.records_read, "rows": stats.row_count, "rejects": 6}

    again = ingest_paths(warehouse, [EXCHANGE])  # idempotent: nothing new
    assert again.records_read == 0 and again.row_count == 0
    assert one("select count(*) as n from smtp") == {"n": 138}

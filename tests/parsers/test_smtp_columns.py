"""Derived columns of ``smtp`` on the seeds' exact failure lines and on the shapes Exchange writes."""

from __future__ import annotations

import pyarrow as pa
import pytest

from parsers.smtp_columns import split_endpoint
from parsers.w3c import SmtpLogParser
from parsers.w3c_header import SMTP_FIELDS

HEADER = (
    "#Software: Microsoft Exchange Server\r\n#Version: 15.1.466.34\r\n#Log-type: {kind} Protocol Log\r\n"
    "#Date: 2016-07-19T12:13:01.020Z\r\n#Fields: " + ",".join(SMTP_FIELDS) + "\r\n"
)
PREFIX = "2016-07-19T12:13:15.145Z,Outbound to Office 365,08D3AFC581A92DD3,7,,,"

# seed 000: the certificate dump and the TLS failure, as the SmtpSend log writes them (ASCII quotes)
SEED_CERT = (
    PREFIX
    + '*," CN=*, OU=IT, O=contoso International (L.L.C), L=Dubai, S=Dubai, C=AE CN=thawte SHA256 SSL CA, '
    'O=""thawte, Inc."", C=US 0D92CFF6070B73AD5722EC8B4DA3389B AAA3D3DADA6891A2CCB3134D0B2D7764F1351BC4 *",'
    "Sending certificate Certificate subject Certificate issuer name Certificate serial number Certificate "
    "thumbprint Certificate subject alternate names"
)
SEED_TLS = PREFIX + "*,,TLS negotiation failed with error UnknownCredentials"
# seed 001: the queue's last error, as the send log's remark carries it
SEED_451 = (
    PREFIX + '*,,"451 4.4.0 Primary target IP address responded with: ""451 5.7.3 Cannot achieve Exchange '
    'Server authentication."" Attempted failover to alternate host, but that did not succeed."'
)


def parse(*lines: str, kind: str = "SMTP Send") -> pa.Table:
    data = (HEADER.format(kind=kind) + "".join(line + "\r\n" for line in lines)).encode()
    parser = SmtpLogParser()
    result = parser.parse(data, source="SEND.LOG", base_offset=0, state=parser.new_state())
    assert result.rejects.num_rows == 0, result.rejects.to_pylist()
    return result.tables["smtp"]


def test_seed_unknown_credentials_lines() -> None:
    cert, tls = parse(SEED_CERT, SEED_TLS).to_pylist()
    assert cert["cert_subject"] == "CN=*, OU=IT, O=contoso International (L.L.C), L=Dubai, S=Dubai, C=AE"
    assert cert["cert_issuer"] == 'CN=thawte SHA256 SSL CA, O="thawte, Inc.", C=US'
    assert cert["cert_serial"] == "0D92CFF6070B73AD5722EC8B4DA3389B"
    assert cert["cert_thumbprint"] == "AAA3D3DADA6891A2CCB3134D0B2D7764F1351BC4"
    assert cert["tls_error"] is None and cert["reply_code"] is None
    assert tls["tls_error"] == "UnknownCredentials"
    assert tls["cert_subject"] is None and tls["direction"] == "send"


def test_seed_451_nested_reply() -> None:
    (row,) = parse(SEED_451).to_pylist()
    assert (row["reply_code"], row["enhanced_status"]) == (451, "4.4.0")
    assert row["nested_reply"] == "451 5.7.3 Cannot achieve Exchange Server authentication."
    assert (row["nested_reply_code"], row["nested_enhanced_status"]) == (451, "5.7.3")


def test_the_blog_copy_of_a_line_is_not_a_log_line() -> None:
    # the seed's text has typographic quotes: the comma inside them splits the field, as it would
    # for any CSV reader; the line is rejected with the field count, not silently misread
    blog = PREFIX + "<,”220 Microsoft ESMTP MAIL Service ready at Tue, 19 Jul 2016 12:13:14 +0000″,"
    parser = SmtpLogParser()
    data = (HEADER.format(kind="SMTP Send") + blog + "\r\n").encode()
    result = parser.parse(data, source="x", base_offset=0, state=parser.new_state())
    assert [r["reason"] for r in result.rejects.to_pylist()] == [
        "expected 9 fields (as the #Fields header says), found 10"
    ]


def test_typographic_quotes_inside_a_field_still_give_the_nested_reply() -> None:
    line = (
        PREFIX
        + '*,,"451 4.4.0 Primary target IP address responded with: “451 5.7.3 Cannot achieve Exchange Server authentication”"'
    )
    (row,) = parse(line).to_pylist()
    assert row["nested_reply"] == "451 5.7.3 Cannot achieve Exchange Server authentication"


@pytest.mark.parametrize(
    ("event", "data", "context", "code", "status"),
    [
        ("<", "220 2.0.0 SMTP server ready", "", 220, "2.0.0"),
        ("<", "250-SIZE 157286400", "", 250, None),
        ("<", "250  BN3NAM01FT012.mail.protection.outlook.com Hello [10.1.2.3]", "", 250, None),
        (">", "334 <authentication response>", "", 334, None),
        ("<", "550 5.7.1 Unable to relay", "", 550, "5.7.1"),
        ("<", "421 4.4.2 Connection dropped due to SocketError", "", 421, "4.4.2"),
        (">", "EHLO mail.contoso.com", "", None, None),
        (">", "2500 is not a reply", "", None, None),
        ("*", "", "530 5.7.1 Client was not authenticated", 530, "5.7.1"),
        ("<", "250 2.1.0 Sender OK", "451 4.4.0 ignored: data wins", 250, "2.1.0"),
    ],
)
def test_reply_code_and_enhanced_status(
    event: str, data: str, context: str, code: int | None, status: str | None
) -> None:
    (row,) = parse(f"{PREFIX}{event},{data},{context}").to_pylist()
    assert (row["reply_code"], row["enhanced_status"]) == (code, status)


def test_one_line_certificate_dump_with_dates_and_names() -> None:
    # Exchange 2016 CU3+ writes the validity dates and the alternate names after the thumbprint
    line = (
        "2023-01-11T15:59:56.232Z,SERVER-HOSTNAME\\Default Frontend SERVER-HOSTNAME,123453EC62278461,6,"
        "10.10.10.10:25,95.10.20.33:56026,*, CN=SERVER-HOSTNAME CN=SERVER-HOSTNAME 12DEABC6565646512346ABDC13456894 "
        "12DEABC6565646512346ABDC1345689413589876 2020-01-17T15:15:33.000Z 2025-01-17T15:15:33.000Z "
        "SERVER-HOSTNAME;SERVER-HOSTNAME.DOMAIN.TEST,Sending certificate Subject Issuer name Serial number "
        "Thumbprint Not before Not after Subject alternate names"
    )
    (row,) = parse(line, kind="SMTP Receive").to_pylist()
    assert (row["cert_subject"], row["cert_issuer"]) == ("CN=SERVER-HOSTNAME", "CN=SERVER-HOSTNAME")
    assert row["cert_serial"] == "12DEABC6565646512346ABDC13456894"
    assert row["cert_thumbprint"] == "12DEABC6565646512346ABDC1345689413589876"
    assert row["direction"] == "receive"


def test_exchange_2010_certificate_one_property_per_line() -> None:
    rows = parse(
        PREFIX + "*,,Received certificate",
        PREFIX + "*,CN=EX2010-DC1,Certificate subject",
        PREFIX + "*,CN=Contoso Issuing CA 01,Certificate issuer name",
        PREFIX + "*,6F2A913C4B0E81A34E1D2C5B7A8F9E10,Certificate serial number",
        PREFIX + "*,A1B2C3D4E5F60718293A4B5C6D7E8F9012345678,Certificate thumbprint",
        PREFIX + ">,CN=EX2010-DC1,Certificate subject",  # not a remark line: no certificate column
    ).to_pylist()
    assert [(r["cert_subject"], r["cert_issuer"], r["cert_serial"], r["cert_thumbprint"]) for r in rows] == [
        (None, None, None, None),
        ("CN=EX2010-DC1", None, None, None),
        (None, "CN=Contoso Issuing CA 01", None, None),
        (None, None, "6F2A913C4B0E81A34E1D2C5B7A8F9E10", None),
        (None, None, None, "A1B2C3D4E5F60718293A4B5C6D7E8F9012345678"),
        (None, None, None, None),
    ]


def test_a_dump_like_text_outside_a_certificate_line_is_not_a_certificate() -> None:
    data = "CN=a CN=b 0D92CFF6070B73AD5722EC8B4DA3389B AAA3D3DADA6891A2CCB3134D0B2D7764F1351BC4"
    rows = parse(
        f"{PREFIX}*,{data},Sending certificate Subject Issuer name Serial number Thumbprint",
        f"{PREFIX}>,{data},",
    ).to_pylist()
    assert [r["cert_subject"] for r in rows] == ["CN=a", None]


def test_endpoints_split_into_ip_and_port() -> None:
    ip, port = split_endpoint(
        pa.array(["10.0.0.5:25", "[2001:db8::1]:587", "", None, "mail.contoso.com", "x:y"])
    )
    assert ip.to_pylist() == ["10.0.0.5", "2001:db8::1", None, None, None, None]
    assert port.to_pylist() == [25, 587, None, None, None, None]


def test_direction_comes_from_the_log_type() -> None:
    assert parse(SEED_TLS, kind="SMTP Receive")["direction"].to_pylist() == ["receive"]
    assert parse(SEED_TLS, kind="SMTP Send")["direction"].to_pylist() == ["send"]

"""SQL macros defined in every DuckDB session, so users and rules share one vocabulary.

Each entry is a complete ``CREATE MACRO`` statement written here, never built from user text.
"""

from __future__ import annotations

from parsers.events_schema import SQL_MACROS as EVENT_CODE_MACROS

MACROS: list[str] = [
    # Split "10.0.0.5:25" / "[2001:db8::1]:25" into host and port.
    "CREATE OR REPLACE MACRO endpoint_ip(ep) AS regexp_extract(ep, '^\\[?([^\\]]*?)\\]?(?::(\\d+))?$', 1)",
    "CREATE OR REPLACE MACRO endpoint_port(ep) AS "
    "TRY_CAST(NULLIF(regexp_extract(ep, ':(\\d+)$', 1), '') AS INTEGER)",
    # Identity (issue 4): AAD Connect's ImmutableID is base64 of the objectGUID's 16 bytes in .NET
    # Guid.ToByteArray order (first three groups little-endian). guid_hex/immutable_id_hex give the
    # 32 hex digits (NULL if not a GUID / not base64 of 16 bytes) that the two converters reorder.
    "CREATE OR REPLACE MACRO guid_hex(g) AS CASE WHEN regexp_matches("
    "lower(regexp_replace(trim(CAST(g AS VARCHAR)), '[{}-]', '', 'g')), '^[0-9a-f]{32}$') "
    "THEN lower(regexp_replace(trim(CAST(g AS VARCHAR)), '[{}-]', '', 'g')) END",
    "CREATE OR REPLACE MACRO immutable_id_hex(iid) AS CASE WHEN "
    "octet_length(try(from_base64(trim(iid)))) = 16 THEN lower(hex(try(from_base64(trim(iid))))) END",
    "CREATE OR REPLACE MACRO immutable_id(guid) AS to_base64(unhex("
    "substr(guid_hex(guid), 7, 2) || substr(guid_hex(guid), 5, 2) || substr(guid_hex(guid), 3, 2) || "
    "substr(guid_hex(guid), 1, 2) || substr(guid_hex(guid), 11, 2) || substr(guid_hex(guid), 9, 2) || "
    "substr(guid_hex(guid), 15, 2) || substr(guid_hex(guid), 13, 2) || substr(guid_hex(guid), 17, 16)))",
    "CREATE OR REPLACE MACRO object_guid(iid) AS "
    "substr(immutable_id_hex(iid), 7, 2) || substr(immutable_id_hex(iid), 5, 2) || "
    "substr(immutable_id_hex(iid), 3, 2) || substr(immutable_id_hex(iid), 1, 2) || '-' || "
    "substr(immutable_id_hex(iid), 11, 2) || substr(immutable_id_hex(iid), 9, 2) || '-' || "
    "substr(immutable_id_hex(iid), 15, 2) || substr(immutable_id_hex(iid), 13, 2) || '-' || "
    "substr(immutable_id_hex(iid), 17, 4) || '-' || substr(immutable_id_hex(iid), 21, 12)",
    # Windows events (issue 3): hresult('-2147023660') = '0x800704D4', the form of events.code
    *EVENT_CODE_MACROS,
]

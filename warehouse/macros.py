"""SQL macros defined in every DuckDB session, so users and rules share one vocabulary.

Each entry is a complete ``CREATE MACRO`` statement written here, never built from user text.
"""

from __future__ import annotations

MACROS: list[str] = [
    # Split "10.0.0.5:25" / "[2001:db8::1]:25" into host and port.
    "CREATE OR REPLACE MACRO endpoint_ip(ep) AS regexp_extract(ep, '^\\[?([^\\]]*?)\\]?(?::(\\d+))?$', 1)",
    "CREATE OR REPLACE MACRO endpoint_port(ep) AS "
    "TRY_CAST(NULLIF(regexp_extract(ep, ':(\\d+)$', 1), '') AS INTEGER)",
]

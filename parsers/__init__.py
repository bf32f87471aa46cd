"""Format grammars, content sniffing and the typed tables they produce.

This package imports nothing else of knownfix: it turns bytes into Arrow tables and rejects.
"""

from parsers.base import (
    REJECTS_SCHEMA,
    REJECTS_TABLE,
    SOURCE_FIELDS,
    TIMESTAMP,
    FileBatch,
    FileParser,
    ParseOptions,
    Parser,
    ParseResult,
    ParserState,
    Reject,
    StreamParser,
    rejects_table,
)
from parsers.registry import PARSERS, detect, parser_for

__all__ = [
    "PARSERS",
    "REJECTS_SCHEMA",
    "REJECTS_TABLE",
    "SOURCE_FIELDS",
    "TIMESTAMP",
    "FileBatch",
    "FileParser",
    "ParseOptions",
    "ParseResult",
    "Parser",
    "ParserState",
    "Reject",
    "StreamParser",
    "detect",
    "parser_for",
    "rejects_table",
]

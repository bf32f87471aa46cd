"""The explicit list of formats, and detection of a file's format from its content."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from parsers.base import Parser
from parsers.directory_users import AadUsersCsvParser, AdUsersCsvParser
from parsers.evtx import EvtxParser
from parsers.hybrid_wizard import HybridWizardParser
from parsers.lines import LinesParser
from parsers.sync_errors_csv import SyncErrorsCsvParser
from parsers.sync_errors_json import SyncErrorsJsonParser
from parsers.sync_errors_mail import SyncErrorMailParser
from parsers.sync_errors_xml import CsExportParser
from parsers.w3c import MessageTrackingParser, SmtpLogParser, W3CParser
from parsers.winevent_csv import EventViewerCsvParser, EventViewerTxtParser
from parsers.winevent_pscsv import PowerShellCsvParser
from parsers.winevent_xml import WinEventXmlParser

#: Every format knownfix reads, by name. Order matters only for equal sniff scores.
#: ``lines`` is the fallback for any text file no other parser claims.
PARSERS: dict[str, type[Parser]] = {
    LinesParser.name: LinesParser,
    # identity (issue 4): AAD Connect sync errors, Hybrid wizard log, directory exports
    CsExportParser.name: CsExportParser,
    SyncErrorsCsvParser.name: SyncErrorsCsvParser,
    SyncErrorsJsonParser.name: SyncErrorsJsonParser,
    SyncErrorMailParser.name: SyncErrorMailParser,
    HybridWizardParser.name: HybridWizardParser,
    AdUsersCsvParser.name: AdUsersCsvParser,
    AadUsersCsvParser.name: AadUsersCsvParser,
    SmtpLogParser.name: SmtpLogParser,
    MessageTrackingParser.name: MessageTrackingParser,
    W3CParser.name: W3CParser,
    # Windows events (issue 3): .evtx, XML, Event Viewer CSV/TXT, Get-WinEvent | Export-Csv
    EvtxParser.name: EvtxParser,
    WinEventXmlParser.name: WinEventXmlParser,
    EventViewerCsvParser.name: EventViewerCsvParser,
    EventViewerTxtParser.name: EventViewerTxtParser,
    PowerShellCsvParser.name: PowerShellCsvParser,
}

#: How many bytes of a file detection looks at.
SNIFF_BYTES = 64 * 1024


class UnknownFormatError(ValueError):
    """A format name that is not registered."""


def parser_for(name: str) -> type[Parser]:
    try:
        return PARSERS[name]
    except KeyError:
        raise UnknownFormatError(
            f"unknown format {name!r}; known formats: {', '.join(sorted(PARSERS))}"
        ) from None


def detect(head: bytes, path: Path) -> type[Parser] | None:
    """The best parser for a file whose first bytes are ``head``; None if nothing claims it.

    Binary content no parser claims returns None (the caller records why it was skipped);
    text always has at least the ``lines`` fallback.
    """
    best: type[Parser] | None = None
    best_score = 0
    for parser in PARSERS.values():
        score = parser.sniff(head, path)
        if score > best_score:
            best, best_score = parser, score
    return best


def table_schemas() -> dict[str, pa.Schema]:
    """The Arrow schema of every fixed-schema table the parsers fill (rules check fields against it).

    A parser class may carry ``TABLES = {table: schema}``; a module of this package may declare
    ``SCHEMAS = {table: schema}`` or one ``TABLE`` and ``SCHEMA`` pair (like ``parsers.lines``).
    Tables whose columns come from a log's own header (IIS, message tracking) have none here.
    """
    import sys

    found: dict[str, pa.Schema] = {}
    for parser in PARSERS.values():
        declared = getattr(parser, "TABLES", None)
        if isinstance(declared, dict):
            found.update({k: v for k, v in declared.items() if isinstance(v, pa.Schema)})
    for name, module in sorted(sys.modules.items()):
        if not name.startswith("parsers.") or module is None:
            continue
        declared = getattr(module, "SCHEMAS", None)
        if isinstance(declared, dict):
            found.update({k: v for k, v in declared.items() if isinstance(v, pa.Schema)})
        table, schema = getattr(module, "TABLE", None), getattr(module, "SCHEMA", None)
        if isinstance(table, str) and isinstance(schema, pa.Schema):
            found.setdefault(table, schema)
    return found

"""The contract every format parser honours.

A parser turns bytes into typed Arrow tables plus reject rows. It never touches storage: the
warehouse commits what a parser returns, together with the file's new position, so a parser can
be tested on a byte string alone.

Two kinds exist because of how files grow:

* ``StreamParser`` formats are line oriented (W3C logs, plain text). They accept any run of
  *complete* lines and carry what they learnt (the current ``#Fields:`` header, the line number)
  in a ``ParserState``, so a tailer can feed them a file piece by piece.
* ``FileParser`` formats need the whole file (``.evtx``, XML and CSV exports with multi-line
  records, UTF-16 files). They yield bounded batches so memory stays flat on any file size.

Reconciliation: every unit a parser reads (a line, or a record of a whole-file format) ends up as
exactly one row in one table or one reject. ``ParseResult.records_read`` counts them so the
warehouse can check ``records_read == rows + rejects`` for every batch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

#: Timestamps in every table are UTC, microsecond precision.
TIMESTAMP = pa.timestamp("us", tz="UTC")

#: Columns every data table ends with, so any row can be traced back to its bytes.
SOURCE_FIELDS: list[pa.Field] = [
    pa.field("source_file", pa.string(), nullable=False),
    pa.field("source_offset", pa.int64(), nullable=False),
    pa.field("line_number", pa.int64()),
]

REJECTS_TABLE = "rejects"

REJECTS_SCHEMA = pa.schema(
    [
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("source_offset", pa.int64(), nullable=False),
        pa.field("line_number", pa.int64()),
        pa.field("format", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.string()),
    ]
)


@dataclass
class Reject:
    """One unit that could not be parsed; it is stored, never dropped."""

    source_file: str
    source_offset: int
    line_number: int | None
    format: str
    reason: str
    raw: str | None


def rejects_table(rejects: list[Reject]) -> pa.Table:
    """Build the Arrow form of a list of rejects (the slow path is fine: rejects are rare)."""
    return pa.table(
        {
            "source_file": pa.array([r.source_file for r in rejects], pa.string()),
            "source_offset": pa.array([r.source_offset for r in rejects], pa.int64()),
            "line_number": pa.array([r.line_number for r in rejects], pa.int64()),
            "format": pa.array([r.format for r in rejects], pa.string()),
            "reason": pa.array([r.reason for r in rejects], pa.string()),
            "raw": pa.array([r.raw for r in rejects], pa.string()),
        },
        schema=REJECTS_SCHEMA,
    )


def empty_rejects() -> pa.Table:
    return REJECTS_SCHEMA.empty_table()


@dataclass
class ParseResult:
    """What one parse call produced.

    ``tables`` maps a table name to rows whose schema ends with ``SOURCE_FIELDS``. A format
    usually fills one table, but W3C files may also fill ``directives`` (their header lines).
    """

    tables: dict[str, pa.Table] = field(default_factory=dict)
    rejects: pa.Table = field(default_factory=empty_rejects)
    records_read: int = 0

    @property
    def row_count(self) -> int:
        return sum(t.num_rows for t in self.tables.values())

    def reconciles(self) -> bool:
        return self.records_read == self.row_count + self.rejects.num_rows

    def add(self, table: str, rows: pa.Table) -> None:
        """Append rows for ``table`` (concatenating if the table already has rows)."""
        if rows.num_rows == 0 and table in self.tables:
            return
        if table in self.tables:
            self.tables[table] = pa.concat_tables([self.tables[table], rows], promote_options="default")
        else:
            self.tables[table] = rows


@dataclass
class ParserState:
    """What a stream parser remembers between two pieces of the same file."""

    line_number: int = 0


@dataclass(frozen=True)
class ParseOptions:
    """Settings a parser may need that the content cannot tell (from config or flags)."""

    #: IANA zone of exports that write local time without an offset (Event Viewer CSV/TXT).
    timezone: str = "UTC"


class Parser(ABC):
    """Common face of both kinds: a name and a content sniffer."""

    def __init__(self, options: ParseOptions | None = None) -> None:
        self.options = options or ParseOptions()

    #: Format name stored with rejects and in the ``files`` table (e.g. ``"w3c"``).
    name: ClassVar[str]
    #: True for ``StreamParser`` subclasses.
    streaming: ClassVar[bool]

    @classmethod
    @abstractmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        """Confidence 0-100 that ``head`` (the file's first bytes, up to 64 KiB) is this format.

        Decide from content; the path may only break ties (e.g. ``.evtx``'s magic is enough).
        """


class StreamParser(Parser):
    """A line-oriented format that can be parsed in arbitrary runs of complete lines."""

    streaming: ClassVar[bool] = True

    def new_state(self) -> ParserState:
        return ParserState()

    @abstractmethod
    def parse(self, data: bytes, *, source: str, base_offset: int, state: ParserState) -> ParseResult:
        """Parse ``data``, which holds complete lines starting at byte ``base_offset`` of the file.

        ``source_offset`` of each row/reject is the byte offset of its line's first byte.
        ``state`` is updated in place (line number, current header).
        """

    def skip(self, data: bytes, *, state: ParserState) -> None:
        """Advance ``state`` over bytes already committed, without producing rows.

        Used when a file is resumed at a checkpoint: the header in force and the line number
        must be known. The default parses and discards; formats override it with a cheap scan.
        """
        self.parse(data, source="", base_offset=0, state=state)


@dataclass
class FileBatch:
    """One bounded batch of a whole-file format.

    ``position`` is an exclusive upper bound, in the same unit as the ``source_offset`` of the
    batch's rows (bytes, or record ordinals for formats without byte positions), and grows
    strictly from batch to batch. The last batch's position marks the file complete.
    """

    result: ParseResult
    position: int


class FileParser(Parser):
    """A format that must be read as a whole file; yields bounded batches."""

    streaming: ClassVar[bool] = False

    @abstractmethod
    def parse_file(self, path: Path, *, source: str, batch_records: int = 50_000) -> Iterator[FileBatch]:
        """Yield batches of at most ``batch_records`` records; never raise on bad content.

        Unreadable parts become rejects (with a reason that says what was skipped); only an
        unreadable file as a whole (permissions, vanished) may raise ``OSError``.
        """

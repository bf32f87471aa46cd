"""W3C extended logs: Exchange SMTP protocol logs, message tracking, and any other ``#Fields:`` log.

A chunk is cut at its directive lines (``#Software:``, ``#Fields:``...) into segments; each
segment's data lines are split in bulk under the header in force (``w3c_split``), typed
(``w3c_tables``, ``smtp_columns``) and stored with their raw text and byte offset. The header in
force travels in the parser state, so a file can be read piece by piece and resumed anywhere.

Every line read is exactly one row (in the log's table, or in ``directives`` for header lines) or
one reject with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parsers.base import SOURCE_FIELDS, ParseResult, ParserState, Reject, StreamParser, rejects_table
from parsers.smtp_columns import SCHEMA as SMTP_SCHEMA
from parsers.smtp_columns import TABLE as SMTP_TABLE
from parsers.smtp_columns import typed_smtp
from parsers.text import UTF8_BOM, invalid_utf8_mask, line_starts, lines_array, looks_like_text
from parsers.w3c_header import (
    SMTP,
    SMTP_FIELDS,
    DirectiveError,
    Layout,
    layout_for,
    parse_directive,
    parse_fields,
)
from parsers.w3c_split import Lines, split_lines, stray_cr_mask
from parsers.w3c_tables import DIRECTIVES_SCHEMA, DIRECTIVES_TABLE, Typed, time_reason, typed_fields

NO_HEADER = "no #Fields header before this line"


@dataclass
class W3CState(ParserState):
    """The header in force: survives from one chunk of a file to the next."""

    software: str | None = None
    log_type: str | None = None
    layout: Layout | None = None
    no_layout_reason: str = NO_HEADER


def apply_directive(state: W3CState, text: str) -> tuple[str, str] | str:
    """Update ``state`` from one ``#`` line; (name, value) if it is a directive, else the reason."""
    try:
        directive = parse_directive(text.lstrip("\ufeff"))
    except DirectiveError as exc:
        return str(exc)
    name, value = directive.name, directive.value
    key = name.lower()
    if key == "software":
        state.software, state.log_type = value, None  # a new header block starts
    elif key == "log-type":
        state.log_type = value
    elif key == "fields":
        try:
            fields, sep = parse_fields(value)
        except DirectiveError as exc:
            state.layout = None
            state.no_layout_reason = f"the #Fields header in force is unusable ({exc})"
            return str(exc)
        state.layout = layout_for(fields, sep, state.log_type, state.software)
    return name, value


@dataclass
class _Chunk:
    """What every segment of one parse call needs to build its rows."""

    lines: Lines
    source: str
    base_offset: int
    first_line: int  # line number of the chunk's first line

    def raw(self, idx: np.ndarray, contiguous: bool) -> pa.Array:
        """The text of lines ``idx`` as stored in ``raw``: no line end, no byte-order mark."""
        text = self.lines.text
        raw = text.slice(int(idx[0]), len(idx)) if contiguous else text.take(pa.array(idx, pa.int64()))
        return pc.utf8_ltrim(raw, "\ufeff") if self.lines.bom[idx].any() else raw

    def source_columns(self, idx: np.ndarray) -> dict[str, pa.Array]:
        n = len(idx)
        contiguous = n > 0 and int(idx[-1]) - int(idx[0]) + 1 == n
        return {
            "raw": self.raw(idx, contiguous),
            "source_file": pa.repeat(self.source, n) if n else pa.array([], pa.string()),
            "source_offset": pa.array(self.lines.starts[idx] + self.base_offset, pa.int64()),
            "line_number": pa.array(idx + self.first_line, pa.int64()),
        }


Typer = Callable[[dict[str, pa.ChunkedArray], Layout], Typed]


class W3CParser(StreamParser):
    """Any W3C extended log with a ``#Fields:`` header (IIS, Exchange connectivity, HttpProxy...)."""

    name: ClassVar[str] = "w3c"
    #: Fixed schemas only; generic tables take their columns from each log's ``#Fields:`` header.
    TABLES: ClassVar[dict[str, pa.Schema]] = {DIRECTIVES_TABLE: DIRECTIVES_SCHEMA}

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        directives = _head_directives(head)
        return 60 if "fields" in directives else 0

    def new_state(self) -> W3CState:
        return W3CState()

    def parse(self, data: bytes, *, source: str, base_offset: int, state: ParserState) -> ParseResult:
        st = _own(state)
        starts = line_starts(data)
        n = len(starts)
        if n == 0:
            return ParseResult()
        first_line = st.line_number + 1
        st.line_number += n
        buf = np.frombuffer(data, dtype=np.uint8)
        ends = np.append(starts[1:], len(data)).astype(np.int64)
        text = lines_array(data, starts)
        # pure ASCII (most Exchange logs) needs no UTF-8 check: one vectorised max
        bad_utf8 = invalid_utf8_mask(data, starts) if buf.max() >= 0x80 else np.zeros(n, dtype=bool)
        empty = np.asarray(pc.binary_length(text).to_numpy(zero_copy_only=False)) == 0
        blank = _blank_lines(text, buf[starts], empty)
        bom = _bom_lines(data, starts, buf)
        lead = buf[np.minimum(starts + 3 * bom, len(data) - 1)]
        directive = (lead == ord("#")) & ~blank & ~bad_utf8
        data_line = ~(blank | bad_utf8 | directive)
        chunk = _Chunk(
            Lines(data, starts, ends, text, stray_cr_mask(data, starts) | bom, bom, empty),
            source,
            base_offset,
            first_line,
        )
        result = ParseResult(records_read=n)
        rejects = [(int(i), "blank line") for i in np.flatnonzero(blank)]
        rejects += [(int(i), "line is not valid UTF-8") for i in np.flatnonzero(bad_utf8)]
        header_rows: list[tuple[int, str, str]] = []
        lo = 0
        for d in [*np.flatnonzero(directive).tolist(), n]:
            if d > lo:
                idx = lo + np.flatnonzero(data_line[lo:d])
                rejects += self._segment(chunk, idx, st, result)
            if d < n:
                got = apply_directive(st, text[d].as_py())
                if isinstance(got, str):
                    rejects.append((d, got))
                else:
                    header_rows.append((d, *got))
            lo = d + 1
        if header_rows:
            result.add(DIRECTIVES_TABLE, _directives(chunk, header_rows))
        if rejects:
            result.rejects = self._rejects(chunk, rejects)
        return result

    def _segment(
        self, chunk: _Chunk, idx: np.ndarray, st: W3CState, result: ParseResult
    ) -> list[tuple[int, str]]:
        """Rows of the data lines ``idx`` (all under one header) into ``result``; returns rejects."""
        if len(idx) == 0:
            return []
        layout = st.layout
        if layout is None:
            return [(int(i), st.no_layout_reason) for i in idx]
        split = split_lines(chunk.lines, idx, layout)
        rejects = list(split.rejects)
        typer: Typer = typed_smtp if layout.kind == SMTP else typed_fields
        typed = typer(split.columns, layout)
        rows = split.lines
        columns = typed.columns
        if typed.bad_time is not None and typed.bad_time.any():
            bad = np.flatnonzero(typed.bad_time)
            said = typed.time_text.take(pa.array(bad)).to_pylist() if typed.time_text is not None else []
            rejects += [
                (int(rows[b]), time_reason(typed.time_label, s)) for b, s in zip(bad, said, strict=True)
            ]
            keep = pa.array(~typed.bad_time)
            columns = {k: v.filter(keep) for k, v in columns.items()}
            rows = rows[~typed.bad_time]
        if len(rows) == 0:
            return rejects
        columns.update(chunk.source_columns(rows))
        if layout.kind == SMTP:
            schema = SMTP_SCHEMA
        else:
            names = [k for k in columns if k not in ("raw", "source_file", "source_offset", "line_number")]
            schema = pa.schema(
                [pa.field(k, columns[k].type) for k in names] + [pa.field("raw", pa.string()), *SOURCE_FIELDS]
            )
        result.add(layout.table, pa.table([columns[f.name] for f in schema], schema=schema))
        return rejects

    def _rejects(self, chunk: _Chunk, rejects: list[tuple[int, str]]) -> pa.Table:
        rejects.sort()
        text = chunk.lines.text
        return rejects_table(
            [
                Reject(
                    source_file=chunk.source,
                    source_offset=int(chunk.lines.starts[i]) + chunk.base_offset,
                    line_number=i + chunk.first_line,
                    format=self.name,
                    reason=reason,
                    raw=text[i].as_py().lstrip("\ufeff"),
                )
                for i, reason in rejects
            ]
        )

    def skip(self, data: bytes, *, state: ParserState) -> None:
        """Count lines and replay directive lines only: the data lines need no parsing.

        Cheap enough (a few ms for 16 MiB) to run ahead of the parsing, which lets the chunks of
        one file be parsed side by side (``ingest.parallel``), each from its own starting state.
        """
        st = _own(state)
        if not data:
            return
        st.line_number += data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        for line in directive_lines(data):
            try:
                apply_directive(st, line.decode("utf-8"))
            except UnicodeDecodeError:
                continue


def directive_lines(data: bytes) -> list[bytes]:
    """The lines of ``data`` that start with ``#`` (after an optional UTF-8 BOM), CR/LF removed.

    ``bytes.find`` jumps from one candidate to the next; a regex would test every byte.
    """
    starts = [0] if data.startswith(b"#") or data.startswith(UTF8_BOM + b"#") else []
    for lead in (b"\n#", b"\n" + UTF8_BOM + b"#"):
        at = data.find(lead)
        while at >= 0:
            starts.append(at + 1)
            at = data.find(lead, at + 1)
    lines = []
    for start in sorted(starts):
        end = data.find(b"\n", start)
        lines.append(data[start : len(data) if end < 0 else end].rstrip(b"\r"))
    return lines


def _own(state: ParserState) -> W3CState:
    if not isinstance(state, W3CState):
        raise TypeError("a W3C parser needs the state from its own new_state()")
    return state


def _blank_lines(text: pa.Array, first_bytes: np.ndarray, empty: np.ndarray) -> np.ndarray:
    """Empty or whitespace-only lines (only lines that start with a blank need a closer look)."""
    blank = empty.copy()
    for i in np.flatnonzero((first_bytes == 0x20) | (first_bytes == 0x09)):
        blank[i] = not text[int(i)].as_py().strip()
    return blank


def _bom_lines(data: bytes, starts: np.ndarray, buf: np.ndarray) -> np.ndarray:
    """Lines that begin with a UTF-8 BOM (the file's first, or files glued together)."""
    mask = buf[starts] == 0xEF
    for i in np.flatnonzero(mask):
        s = int(starts[i])
        mask[i] = data[s : s + 3] == UTF8_BOM
    return mask


def _directives(chunk: _Chunk, rows: list[tuple[int, str, str]]) -> pa.Table:
    idx = np.array([r[0] for r in rows], dtype=np.int64)
    cols: dict[str, pa.Array] = {
        "directive": pa.array([r[1] for r in rows], pa.string()),
        "value": pa.array([r[2] for r in rows], pa.string()),
    }
    cols.update(chunk.source_columns(idx))
    return pa.table([cols[f.name] for f in DIRECTIVES_SCHEMA], schema=DIRECTIVES_SCHEMA)


def _head_directives(head: bytes) -> dict[str, str]:
    """Directives among the first lines of a file (lower-cased name -> value)."""
    if not looks_like_text(head):
        return {}
    found: dict[str, str] = {}
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    for line in text.splitlines()[:200]:
        if line.startswith("#"):
            try:
                d = parse_directive(line)
            except DirectiveError:
                continue
            found.setdefault(d.name.lower(), d.value)
    return found


class SmtpLogParser(W3CParser):
    """Exchange SMTP Send/Receive protocol logs (table ``smtp``)."""

    name: ClassVar[str] = "exchange_smtp"
    TABLES: ClassVar[dict[str, pa.Schema]] = {SMTP_TABLE: SMTP_SCHEMA, DIRECTIVES_TABLE: DIRECTIVES_SCHEMA}

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        d = _head_directives(head)
        log_type = d.get("log-type", "").lower()
        fields = tuple(f.strip().lower() for f in d.get("fields", "").split(","))
        if fields == SMTP_FIELDS or re.fullmatch(r"smtp (send|receive) protocol log", log_type):
            return 90
        return 0


class MessageTrackingParser(W3CParser):
    """Exchange message tracking logs (table ``message_tracking``)."""

    name: ClassVar[str] = "exchange_msgtrk"

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        return 90 if _head_directives(head).get("log-type", "").lower() == "message tracking log" else 0

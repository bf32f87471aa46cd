"""Fallback format: any UTF-8 text file becomes one row per line in table ``lines``.

Nothing a share holds is refused because no specific parser exists yet: rules can still look at a
PowerShell transcript or a setup log line by line.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa

from parsers.base import SOURCE_FIELDS, ParseResult, ParserState, Reject, StreamParser, rejects_table
from parsers.text import invalid_utf8_mask, line_starts, lines_array, looks_like_text

TABLE = "lines"

SCHEMA = pa.schema([pa.field("text", pa.string()), *SOURCE_FIELDS])


class LinesParser(StreamParser):
    name: ClassVar[str] = "lines"

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        return 1 if looks_like_text(head) else 0

    def parse(self, data: bytes, *, source: str, base_offset: int, state: ParserState) -> ParseResult:
        starts = line_starts(data)
        n = len(starts)
        first = state.line_number + 1
        state.line_number += n
        if n == 0:
            return ParseResult()
        bad = invalid_utf8_mask(data, starts)
        text = lines_array(data, starts)
        offsets = starts + base_offset
        numbers = np.arange(first, first + n, dtype=np.int64)
        keep = ~bad
        rows = pa.table(
            {
                "text": text.filter(pa.array(keep)),
                "source_file": pa.array([source] * int(keep.sum()), pa.string()),
                "source_offset": pa.array(offsets[keep]),
                "line_number": pa.array(numbers[keep]),
            },
            schema=SCHEMA,
        )
        result = ParseResult(tables={TABLE: rows}, records_read=n)
        if bad.any():
            ends = np.concatenate((starts[1:], [len(data)]))
            result.rejects = rejects_table(
                [
                    Reject(
                        source_file=source,
                        source_offset=int(offsets[i]),
                        line_number=int(numbers[i]),
                        format=self.name,
                        reason="line is not valid UTF-8",
                        raw=data[int(starts[i]) : int(ends[i])]
                        .decode("utf-8", errors="replace")
                        .rstrip("\r\n"),
                    )
                    for i in np.flatnonzero(bad)
                ]
            )
        return result

    def skip(self, data: bytes, *, state: ParserState) -> None:
        state.line_number += len(line_starts(data))

"""Golden files: an input under ``tests/golden/<format>/`` beside the ``.jsonl`` of the rows and
rejects it must give.

Every format's golden test turns parser output into those records and reads the expected ones
here, so the shape of a record and the regeneration switch are written once: set
``KNOWNFIX_REGEN=1`` to rewrite the expected files after a deliberate change, then review the diff.
The tests assert themselves (``assert got == expected``), so pytest shows the difference.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from parsers.base import FileParser, ParseOptions, Parser, ParseResult
from parsers.registry import SNIFF_BYTES, detect

#: Environment variable that makes ``expected`` rewrite the file from the records given.
REGEN = "KNOWNFIX_REGEN"

Record = dict[str, object]


def plain(value: object) -> object:
    """A value as the ``.jsonl`` holds it: datetimes as ISO text."""
    return value.isoformat() if isinstance(value, dt.datetime) else value


def table_rows(result: ParseResult) -> list[Record]:
    """The rows of every table of ``result`` (tables by name), each tagged with its ``table``."""
    return [
        {"table": table, **{k: plain(v) for k, v in r.items()}}
        for table, rows in sorted(result.tables.items())
        for r in rows.to_pylist()
    ]


def detected(path: Path, options: ParseOptions | None = None) -> Parser:
    """The parser the registry picks for ``path`` from its first bytes."""
    parser_cls = detect(path.read_bytes()[:SNIFF_BYTES], path)
    assert parser_cls is not None, f"no format detected for {path.name}"
    return parser_cls(options)


@dataclass
class Parsed:
    """A whole file parsed: the format detected, its records in file order, and each batch."""

    name: str
    lines: list[Record] = field(default_factory=list)
    results: list[ParseResult] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)


def parse_file(path: Path, options: ParseOptions | None = None, batch_records: int = 50_000) -> Parsed:
    """Parse a whole-file format; a reject is tagged ``reject`` (its reason) and follows the rows
    at its offset."""
    parser = detected(path, options)
    assert isinstance(parser, FileParser), f"{path.name}: {parser.name} is not a whole-file format"
    parsed = Parsed(parser.name)
    for batch in parser.parse_file(path, source=path.name, batch_records=batch_records):
        parsed.results.append(batch.result)
        parsed.positions.append(batch.position)
        parsed.lines.extend(table_rows(batch.result))
        parsed.lines.extend({"reject": r["reason"], **r} for r in batch.result.rejects.to_pylist())
    parsed.lines.sort(key=lambda x: (int(str(x["source_offset"])), "reject" in x))  # file order
    return parsed


def expected(expected_file: Path, got: list[Record]) -> list[Record]:
    """The records ``expected_file`` holds; with ``KNOWNFIX_REGEN`` set it is first rewritten from ``got``."""
    if os.environ.get(REGEN):
        expected_file.write_text(
            "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in got), encoding="utf-8"
        )
    return [json.loads(x) for x in expected_file.read_text(encoding="utf-8").splitlines()]

"""What a rule may refer to: the tables parsers fill, their columns and types.

Fields are checked against the parsers' real schemas (``parsers.registry.table_schemas``), so a
typo in a rule fails at load time with the list of valid fields, not at 3 a.m. as a SQL error.
A MAP column (``event_data`` of ``events``) is addressed as ``event_data.Name``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from parsers.base import StreamParser
from parsers.registry import SNIFF_BYTES, detect, table_schemas
from warehouse.store import VERSION_COLUMN

#: Columns holding the text a person reads for a row, in order of preference (samples use it).
TEXT_COLUMNS = ("message", "raw", "text")
#: Columns of free text (whole lines, messages, protocol data). A regex pass over one costs several
#: times a pass over a short code column (``tls_error``, ``enhanced_status``), so the prefilter
#: looks for a rule's signature in a short column whenever the rule tests one.
WIDE_COLUMNS = frozenset(
    {"raw", "data", "context", "message", "text", "error_text", "event_data_json", "parameters"}
)
#: Columns that identify a row's bytes (every data table ends with them).
SOURCE_COLUMNS = ("source_file", "source_offset", "line_number")


class UnknownFieldError(ValueError):
    """A field that the table does not have; the message lists the valid ones."""


@dataclass(frozen=True)
class FieldRef:
    """A resolved field: the column, the MAP key if any, and the type of the value."""

    name: str
    column: str
    key: str | None
    type: pa.DataType

    @property
    def is_string(self) -> bool:
        return pa.types.is_string(self.type) or pa.types.is_large_string(self.type)

    @property
    def is_numeric(self) -> bool:
        return pa.types.is_integer(self.type) or pa.types.is_floating(self.type)

    @property
    def is_integer(self) -> bool:
        return pa.types.is_integer(self.type)

    @property
    def is_timestamp(self) -> bool:
        return pa.types.is_timestamp(self.type)


@dataclass(eq=False)
class TableSchema:
    """One table's columns as rules see them."""

    name: str
    schema: pa.Schema
    _names: dict[str, pa.Field] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._names = {f.name: f for f in self.schema}

    @property
    def time_column(self) -> str | None:
        """The row's time (first timestamp column), used by windows; None if the table has none."""
        for f in self.schema:
            if pa.types.is_timestamp(f.type):
                return f.name
        return None

    @property
    def text_columns(self) -> list[str]:
        return [c for c in TEXT_COLUMNS if c in self._names]

    def has(self, column: str) -> bool:
        return column in self._names

    def field_names(self) -> list[str]:
        """What a rule may name: every column, MAP columns shown as ``column.<key>``."""
        names = []
        for f in self.schema:
            if f.name == VERSION_COLUMN:
                continue
            names.append(f"{f.name}.<key>" if pa.types.is_map(f.type) else f.name)
        return names

    def resolve(self, name: str) -> FieldRef:
        """The column (and MAP key) behind a field name, or ``UnknownFieldError``."""
        if name in self._names and name != VERSION_COLUMN:
            f = self._names[name]
            return FieldRef(name, f.name, None, f.type)
        column, dot, key = name.partition(".")
        if dot and key and column in self._names and pa.types.is_map(self._names[column].type):
            map_type = self._names[column].type
            assert isinstance(map_type, pa.MapType)
            return FieldRef(name, column, key, map_type.item_type)
        valid = self.field_names()
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f"did you mean `{close[0]}`? " if close else ""
        raise UnknownFieldError(
            f"unknown field `{name}` in table {self.name}; {hint}fields of {self.name}: {', '.join(valid)}"
        )


def known_tables() -> dict[str, TableSchema]:
    """Every table a registered parser fills."""
    return {name: TableSchema(name, schema) for name, schema in sorted(table_schemas().items())}


def schemas_from_sample(text: str, name: str = "example.log") -> dict[str, pa.Schema]:
    """The tables (and their schemas) that the real parser makes of ``text``.

    Tables whose columns follow a log's own ``#Fields:`` header (IIS, message tracking) have no
    fixed schema; a rule over one is checked against what its examples parse into.
    """
    data = text.encode("utf-8")
    parser_cls = detect(data[:SNIFF_BYTES], Path(name))
    if parser_cls is None:
        return {}
    parser = parser_cls()
    if not isinstance(parser, StreamParser):
        return {}
    result = parser.parse(data, source=name, base_offset=0, state=parser.new_state())
    return {table: rows.schema for table, rows in result.tables.items() if rows.num_rows}


def merge_schemas(schemas: list[pa.Schema]) -> pa.Schema:
    return pa.unify_schemas(schemas, promote_options="permissive")

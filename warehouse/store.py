"""Delta Lake tables in one folder: appends that carry checkpoints, snapshots for readers.

Every table is a Delta table under ``<root>/tables/<name>``. An append may carry application
transactions ``(app_id, version)`` in the same atomic commit; knownfix uses ``app_id`` = a tailed
file's identity and ``version`` = the position up to which that file's records are in the table.
Every appended row is stamped with ``_version``, the table version its commit created, which is
the watermark incremental rule evaluation reads from (one writer at a time: see ``lock``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
from deltalake import (
    ColumnProperties,
    CommitProperties,
    DeltaTable,
    Transaction,
    WriterProperties,
    write_deltalake,
)
from deltalake.exceptions import DeltaError, TableNotFoundError

from warehouse.errors import WarehouseCorruptError, WarehouseError

VERSION_COLUMN = "_version"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

#: Parquet settings for every append. Log columns are mostly distinct texts (the raw line, the
#: SMTP data), for which dictionary encoding is work thrown away; without it the writer needs
#: a quarter less CPU, and LZ4 keeps the files as small as Snappy would (``./dev bench smtp``).
WRITER_PROPERTIES = WriterProperties(
    compression="LZ4_RAW", default_column_properties=ColumnProperties(dictionary_enabled=False)
)


def valid_table_name(name: str) -> bool:
    return bool(_NAME.match(name))


class Warehouse:
    """A folder of Delta tables. Cheap to create; opens tables lazily and caches them."""

    def __init__(self, root: Path | str, *, merge_copies: bool = True) -> None:
        self.root = Path(root)
        #: Keep one row per Windows event across files (``warehouse.copies``); off only where
        #: every file is a scenario of its own, such as the rule examples' scratch warehouse.
        self.merge_copies = merge_copies
        self._tables: dict[str, DeltaTable] = {}

    @property
    def tables_dir(self) -> Path:
        return self.root / "tables"

    @property
    def state_dir(self) -> Path:
        """Where small mutable state lives (ticket outbox, tail status); not Delta."""
        path = self.root / "state"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def exists(self) -> bool:
        return self.tables_dir.is_dir()

    def table_path(self, name: str) -> Path:
        if not valid_table_name(name):
            raise WarehouseError(f"invalid table name {name!r}: use lower-case letters, digits and _")
        return self.tables_dir / name

    def table_names(self) -> list[str]:
        if not self.tables_dir.is_dir():
            return []
        return sorted(p.name for p in self.tables_dir.iterdir() if p.is_dir() and (p / "_delta_log").is_dir())

    def has_table(self, name: str) -> bool:
        return (self.table_path(name) / "_delta_log").is_dir()

    def table(self, name: str, *, refresh: bool = False) -> DeltaTable | None:
        """The Delta table ``name`` at its latest version, or None if it was never written."""
        cached = self._tables.get(name)
        if cached is not None:
            if refresh:
                cached.update_incremental()
            return cached
        if not self.has_table(name):
            return None
        try:
            dt = DeltaTable(str(self.table_path(name)))
        except TableNotFoundError:
            return None
        except (DeltaError, OSError, ValueError) as exc:
            raise WarehouseCorruptError(
                f"table {name} in {self.root} cannot be read ({exc}); "
                f"move {self.table_path(name)} aside and re-ingest its files"
            ) from exc
        self._tables[name] = dt
        return dt

    def checkpoint(self, name: str, app_id: str) -> int | None:
        """Position recorded for ``app_id`` in table ``name``, None if it never committed there."""
        dt = self.table(name)
        if dt is None:
            return None
        return dt.transaction_version(app_id)

    def next_version(self, name: str) -> int:
        dt = self.table(name)
        return 0 if dt is None else dt.version() + 1

    def append(self, name: str, rows: pa.Table, checkpoints: dict[str, int] | None = None) -> int:
        """Append ``rows`` (possibly none) and the checkpoints in one commit; returns the version.

        New columns are merged into the table's schema, so a W3C log whose header grows keeps
        landing in the same table.
        """
        version = self.next_version(name)
        stamped = rows.append_column(
            pa.field(VERSION_COLUMN, pa.int64(), nullable=False),
            pa.repeat(pa.scalar(version, pa.int64()), rows.num_rows),
        )
        txns = [Transaction(app_id=k, version=v) for k, v in sorted((checkpoints or {}).items())]
        path = self.table_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        target = self.table(name)
        write_deltalake(
            target if target is not None else str(path),
            stamped,
            mode="append",
            schema_mode="merge",
            writer_properties=WRITER_PROPERTIES,
            commit_properties=CommitProperties(app_transactions=txns) if txns else None,
        )
        if target is None:
            self._tables.pop(name, None)
            self.table(name)
        else:
            target.update_incremental()
        return version

    def compact(self, name: str) -> dict[str, object]:
        """Merge the small files that tailing makes; readers keep their snapshots."""
        dt = self.table(name, refresh=True)
        if dt is None:
            raise WarehouseError(f"no table {name}")
        return dict(dt.optimize.compact(writer_properties=WRITER_PROPERTIES))

"""Window history kept between the runs of one evaluator: the matching rows a lookback re-reads.

Under tailing, a threshold's lookback read every row of its window from the files on every run
(at 20,000 lines/s a minute is 1.2 million rows) to find the few that match; that read grew
each run until the window was full. The rows it finds are the ones earlier runs of this process
flagged, so they are kept here, and a lookback reads them instead of the files whenever they
provably cover it: the kept rows of a rule are all its matching rows with ``_version <= version``
and time ``>= since``, ``version`` is the run's watermark, and the window starts at or after
``since``. Otherwise (first run, the watermark moved elsewhere, an earlier time) the files are
read and the rows kept from then on. The same SQL filters either source, so the hits are the same;
nothing here outlives the process (DESIGN.md: windows need no state of our own to be correct).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

#: Rows older than the newest kept row by more than the window and this are let go.
KEEP_SLACK = dt.timedelta(minutes=1)


@dataclass
class Kept:
    """All matching rows of one rule with ``_version <= version`` and time ``>= since``."""

    version: int
    since: Any  # datetime, or None: from the beginning
    rows: pa.Table


class History:
    """Kept rows per rule id, valid for the run whose watermark is their ``version``."""

    def __init__(self) -> None:
        self._kept: dict[str, Kept] = {}
        self._base: dict[str, Kept] = {}  # this run's history per rule, to extend after the write

    def begin(self) -> None:
        self._base = {}

    def covering(self, rule_id: str, after: int | None, start: Any) -> Kept | None:
        """The kept rows if they hold every matching row a lookback from ``start`` needs."""
        kept = self._kept.get(rule_id)
        if kept is None or after is None or kept.version != after:
            return None
        if kept.since is not None and (start is None or start < kept.since):
            return None
        return kept

    def carry(self, rule_id: str, after: int | None) -> None:
        """The run needs no lookback for the rule: what was kept stays its base (if current)."""
        kept = self._kept.get(rule_id)
        if kept is not None and after is not None and kept.version == after:
            self._base[rule_id] = kept

    def base(self, rule_id: str, kept: Kept) -> None:
        """What this run knew of the rule's rows before its own (``kept.version`` = watermark)."""
        self._base[rule_id] = kept

    def commit(
        self, to_version: int, fresh: dict[str, pa.Table], time_column: str, windows: dict[str, int]
    ) -> None:
        """After the watermark moved to ``to_version``: each rule's rows are its base plus ``fresh``.

        A rule evaluated without a base (nothing kept, no lookback) is forgotten.
        """
        kept = {}
        for rule_id, rows in fresh.items():
            base = self._base.get(rule_id)
            if base is None:
                continue
            table = pa.concat_tables(
                [base.rows, rows.select(base.rows.column_names)], promote_options="permissive"
            )
            since = base.since
            newest = pc.max(table.column(time_column)).as_py() if table.num_rows else None
            if newest is not None:
                bound = newest - dt.timedelta(seconds=windows[rule_id]) - KEEP_SLACK
                if since is None or bound > since:
                    since = bound
                    ts = table.column(time_column)
                    table = table.filter(pc.fill_null(pc.greater_equal(ts, pa.scalar(since, ts.type)), False))
            kept[rule_id] = Kept(to_version, since, table)
        self._kept = kept
        self._base = {}

"""The dispatcher's own state: a small SQLite file under the warehouse's ``state/`` folder.

The ``hits`` Delta table is the outbox (the rule engine commits hits atomically); this file holds
what changes as tickets are delivered: the ``hits`` version read so far (the watermark), one
incident per dedup key, the hits not yet reported to every sink, and per (sink, key) the remote
ticket, what it reflects (``sent_seq``), when it was last updated, and any dead-letter reason.
Absorbing hits and advancing the watermark happen in one SQLite transaction, so a crash never
counts a hit twice or skips one. One process dispatches at a time (``DispatchLock``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tickets.errors import DispatchLockedError
from tickets.model import Fix, Incident, News, Sample
from warehouse.errors import WarehouseLockedError
from warehouse.lock import WriterLock

SCHEMA_VERSION = 1
KEPT_SAMPLES = 50

_SCHEMA = """
create table if not exists meta (key text primary key, value text not null);
create table if not exists incidents (
    dedup_key text primary key, ord integer not null,
    rule_id text not null, rule_title text not null, severity text not null, kind text not null,
    table_name text not null, group_key text not null,
    fix_summary text, fix_json text, refs text not null, query text,
    first_seen text, last_seen text, count integer not null, seq integer not null,
    last_activity text not null, samples text not null
);
create table if not exists hit_log (
    hit_id text primary key, dedup_key text not null, seq integer not null, count integer not null,
    first_seen text, last_seen text, samples text not null
);
create index if not exists hit_log_key on hit_log (dedup_key, seq);
create table if not exists deliveries (
    sink text not null, dedup_key text not null,
    remote_id text, remote_url text, state text not null default 'new',
    sent_seq integer not null default 0, sent_count integer not null default 0,
    last_update text, attempts integer not null default 0, last_error text,
    dead_reason text, dead_at text, previous text not null default '[]',
    primary key (sink, dedup_key)
);
create table if not exists sinks (
    sink text primary key, failures integer not null, retry_at text, last_error text
);
"""


def _ts(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value is not None else None


def _dt(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


@dataclass
class Delivery:
    """Where one incident stands in one sink."""

    sink: str
    dedup_key: str
    remote_id: str | None = None
    remote_url: str | None = None
    state: str = "new"  # new (nothing sent) | open | resolved (closed by knownfix)
    sent_seq: int = 0
    sent_count: int = 0
    last_update: dt.datetime | None = None
    attempts: int = 0
    last_error: str | None = None
    dead_reason: str | None = None
    dead_at: dt.datetime | None = None
    #: older tickets of this key closed by a person: [{"id":…, "url":…}]
    previous: list[dict[str, str | None]] = field(default_factory=list)


@dataclass
class SinkHealth:
    sink: str
    failures: int
    retry_at: dt.datetime | None
    last_error: str | None


class StateStore:
    def __init__(self, path: Path | str) -> None:
        self.path = path
        self.con = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        self.con.row_factory = sqlite3.Row
        if str(path) != ":memory:":
            self.con.execute("pragma journal_mode=wal")
        self.con.execute("pragma synchronous=full")
        self.con.executescript(_SCHEMA)
        self.con.execute("insert or ignore into meta values ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def copy_in_memory(self) -> StateStore:
        """A throwaway copy (for ``--dry-run``: same decisions, nothing kept)."""
        mem = StateStore(":memory:")
        self.con.backup(mem.con)
        return mem

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.con.execute("begin immediate")
        try:
            yield self.con
        except BaseException:
            self.con.execute("rollback")
            raise
        self.con.execute("commit")

    def close(self) -> None:
        self.con.close()

    # -- the watermark and the incidents ----------------------------------------------------------
    def watermark(self) -> int:
        row = self.con.execute("select value from meta where key='watermark'").fetchone()
        return int(row[0]) if row else -1

    def absorb(self, hits: list[dict[str, Any]], version: int, now: dt.datetime) -> int:
        """Fold ``hits`` (rows of the hits table, in order) into incidents; returns how many were new."""
        new = 0
        with self.transaction() as con:
            for h in hits:
                if con.execute("select 1 from hit_log where hit_id=?", (h["hit_id"],)).fetchone():
                    continue  # the same rows evaluated twice: already counted
                new += 1
                self._fold(con, h, now)
            con.execute("insert or replace into meta values ('watermark', ?)", (str(version),))
        return new

    def _fold(self, con: sqlite3.Connection, h: dict[str, Any], now: dt.datetime) -> None:
        key = h["dedup_key"]
        samples = [Sample.from_dict(s).to_dict() for s in h.get("samples") or []]
        activity = max(now, h["detected_at"]) if h.get("detected_at") else now
        row = con.execute("select * from incidents where dedup_key=?", (key,)).fetchone()
        if row is None:
            ord_ = con.execute("select coalesce(max(ord), 0) + 1 from incidents").fetchone()[0]
            seq, count, first, last, kept = 1, h["count"], h.get("first_seen"), h.get("last_seen"), samples
        else:
            ord_ = row["ord"]
            seq, count = row["seq"] + 1, row["count"] + h["count"]
            first = _min(_dt(row["first_seen"]), h.get("first_seen"))
            last = _max(_dt(row["last_seen"]), h.get("last_seen"))
            kept = json.loads(row["samples"])
            kept += samples[: max(0, KEPT_SAMPLES - len(kept))]
            activity = max(activity, _dt(row["last_activity"]) or activity)
        con.execute(
            "insert or replace into incidents values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                key,
                ord_,
                h["rule_id"],
                h["rule_title"],
                h["severity"],
                h["kind"],
                h["table_name"],
                h["group_key"],
                h.get("fix_summary"),
                h.get("fix_json"),
                json.dumps(list(h.get("references") or [])),
                h.get("query"),
                _ts(first),
                _ts(last),
                count,
                seq,
                _ts(activity),
                json.dumps(kept),
            ),
        )
        con.execute(
            "insert into hit_log values (?,?,?,?,?,?,?)",
            (
                h["hit_id"],
                key,
                seq,
                h["count"],
                _ts(h.get("first_seen")),
                _ts(h.get("last_seen")),
                json.dumps(samples),
            ),
        )

    def incident(self, key: str) -> Incident:
        row = self.con.execute("select * from incidents where dedup_key=?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return Incident(
            dedup_key=row["dedup_key"],
            rule_id=row["rule_id"],
            rule_title=row["rule_title"],
            severity=row["severity"],
            kind=row["kind"],
            table_name=row["table_name"],
            group_key=row["group_key"],
            fix=Fix.parse(row["fix_summary"], row["fix_json"]),
            references=json.loads(row["refs"]),
            query=row["query"] or "",
            first_seen=_dt(row["first_seen"]),
            last_seen=_dt(row["last_seen"]),
            count=row["count"],
            seq=row["seq"],
            last_activity=_dt(row["last_activity"]) or dt.datetime.now(dt.UTC),
            samples=[Sample.from_dict(s) for s in json.loads(row["samples"])],
        )

    def due(self, sink: str, quiet_before: dt.datetime | None) -> list[str]:
        """Keys with something to do for ``sink``: unsent hits, or an open ticket gone quiet."""
        rows = self.con.execute(
            """select i.dedup_key from incidents i
               left join deliveries d on d.sink = ? and d.dedup_key = i.dedup_key
               where d.dead_reason is null and (
                   d.dedup_key is null or d.remote_id is null or i.seq > d.sent_seq
                   or (? is not null and d.state = 'open' and i.last_activity <= ?))
               order by i.ord""",
            (sink, _ts(quiet_before), _ts(quiet_before)),
        ).fetchall()
        return [r[0] for r in rows]

    def news(self, key: str, after_seq: int) -> News:
        rows = self.con.execute(
            "select * from hit_log where dedup_key=? and seq>? order by seq", (key, after_seq)
        ).fetchall()
        samples = [Sample.from_dict(s) for r in rows for s in json.loads(r["samples"])]
        firsts = [d for r in rows if (d := _dt(r["first_seen"])) is not None]
        lasts = [d for r in rows if (d := _dt(r["last_seen"])) is not None]
        return News(
            count=sum(r["count"] for r in rows),
            hits=len(rows),
            first_seen=min(firsts, default=None),
            last_seen=max(lasts, default=None),
            samples=samples,
        )

    def prune(self, key: str, sinks: list[str]) -> None:
        """Forget hits every configured sink has reported."""
        sent = [self.delivery(s, key) for s in sinks]
        upto = min((d.sent_seq if d is not None else 0) for d in sent) if sent else 0
        if upto > 0:
            self.con.execute("delete from hit_log where dedup_key=? and seq<=?", (key, upto))

    # -- deliveries ----------------------------------------------------------------------------------
    def delivery(self, sink: str, key: str) -> Delivery | None:
        row = self.con.execute(
            "select * from deliveries where sink=? and dedup_key=?", (sink, key)
        ).fetchone()
        return _delivery(row) if row is not None else None

    def save(self, d: Delivery) -> None:
        self.con.execute(
            "insert or replace into deliveries values (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                d.sink,
                d.dedup_key,
                d.remote_id,
                d.remote_url,
                d.state,
                d.sent_seq,
                d.sent_count,
                _ts(d.last_update),
                d.attempts,
                d.last_error,
                d.dead_reason,
                _ts(d.dead_at),
                json.dumps(d.previous),
            ),
        )

    def deliveries(self, *, failed: bool = False) -> list[Delivery]:
        where = "where dead_reason is not null or last_error is not null" if failed else ""
        rows = self.con.execute(
            f"select d.* from deliveries d join incidents i using (dedup_key) {where} order by i.ord, d.sink"
        ).fetchall()
        return [_delivery(r) for r in rows]

    def clear_dead(self, sink: str | None = None, key: str | None = None) -> int:
        """Put dead-lettered deliveries back in the queue (``tickets retry``)."""
        cur = self.con.execute(
            """update deliveries set dead_reason=null, dead_at=null, attempts=0, last_error=null
               where dead_reason is not null and (? is null or sink=?) and (? is null or dedup_key=?)""",
            (sink, sink, key, key),
        )
        self.con.execute("delete from sinks where ? is null or sink=?", (sink, sink))
        return cur.rowcount

    # -- sink health (a sink that keeps failing is paused with backoff) ------------------------------
    def health(self, sink: str) -> SinkHealth | None:
        row = self.con.execute("select * from sinks where sink=?", (sink,)).fetchone()
        return _health(row) if row is not None else None

    def all_health(self) -> list[SinkHealth]:
        return [_health(r) for r in self.con.execute("select * from sinks order by sink")]

    def sink_failed(self, sink: str, error: str, retry_at: dt.datetime) -> int:
        h = self.health(sink)
        failures = (h.failures if h else 0) + 1
        self.con.execute(
            "insert or replace into sinks values (?,?,?,?)", (sink, failures, _ts(retry_at), error)
        )
        return failures

    def sink_ok(self, sink: str) -> None:
        self.con.execute("delete from sinks where sink=?", (sink,))


def _health(row: sqlite3.Row) -> SinkHealth:
    return SinkHealth(row["sink"], row["failures"], _dt(row["retry_at"]), row["last_error"])


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        sink=row["sink"],
        dedup_key=row["dedup_key"],
        remote_id=row["remote_id"],
        remote_url=row["remote_url"],
        state=row["state"],
        sent_seq=row["sent_seq"],
        sent_count=row["sent_count"],
        last_update=_dt(row["last_update"]),
        attempts=row["attempts"],
        last_error=row["last_error"],
        dead_reason=row["dead_reason"],
        dead_at=_dt(row["dead_at"]),
        previous=json.loads(row["previous"]),
    )


def _min(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return min(x for x in (a, b) if x is not None) if (a or b) else None


def _max(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return max(x for x in (a, b) if x is not None) if (a or b) else None


class DispatchLock:
    """One dispatcher per warehouse: a second one gets a clear error instead of double tickets.

    The warehouse's writer lock, on a file of its own under ``state/`` (dispatching does not
    write tables, so it never waits for ``ingest`` or ``tail``).
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._lock = WriterLock(state_dir)

    def __enter__(self) -> DispatchLock:
        try:
            self._lock.acquire()
        except WarehouseLockedError:
            holder = self._lock.path.read_text(errors="replace").strip() or "unknown"
            raise DispatchLockedError(
                f"tickets of {self.state_dir.parent} are being dispatched by process {holder}; "
                "that process will send them (stop it to dispatch by hand)"
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

"""``./dev bench evtx``: events/s of a large ``.evtx`` into the ``events`` table (Arrow batches and
the Delta commit, through the real ingest) against the ``evtx`` package's own iteration of the
same file, in the same run.

The large file is built from the public System sample (../shared/samples/evtx/
omerbenamram-evtx_2-vss_7-System.evtx, from github omerbenamram/evtx): its used 64 KiB chunks are
repeated after its file header. Each chunk carries its own string and template tables, so the
copies are valid chunks the package reads like any other (record ids repeat; the parser's chunk
ledger counts copies). Set ``KNOWNFIX_BENCH_EVTX_COPIES`` to change the size (default 100 copies:
116,000 events, 72 MB). Runs alternate and the best of each is kept, since the machine is shared.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import evtx

from ingest.backfill import ingest_paths
from parsers.evtx import CHUNK_SIZE, HEADER_SIZE, EvtxParser, read_chunks
from warehouse.store import Warehouse

SAMPLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "samples" / "evtx"
SAMPLE_FILE = "omerbenamram-evtx_2-vss_7-System.evtx"
TARGET = 0.7
ROUNDS = 3


def build(dst: Path, copies: int) -> Path:
    """A large .evtx: the sample's header, then its used chunks ``copies`` times."""
    src = SAMPLE / SAMPLE_FILE
    data = src.read_bytes()
    chunks = b"".join(
        data[HEADER_SIZE + c.index * CHUNK_SIZE : HEADER_SIZE + (c.index + 1) * CHUNK_SIZE]
        for c in read_chunks(src)[0]
    )
    path = dst / "large-System.evtx"
    with path.open("wb") as f:
        f.write(data[:HEADER_SIZE])
        for _ in range(copies):
            f.write(chunks)
    return path


def _timed(fn: Callable[[], int]) -> tuple[int, float, float]:
    """(events, wall seconds, CPU seconds of all the process's threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    n = fn()
    return n, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    if not (SAMPLE / SAMPLE_FILE).is_file():
        print(f"the public sample {SAMPLE / SAMPLE_FILE} is missing; nothing to measure")
        return
    copies = int(os.environ.get("KNOWNFIX_BENCH_EVTX_COPIES", "100"))
    with tempfile.TemporaryDirectory(prefix="knownfix-bench-evtx-") as tmp:
        path = build(Path(tmp), copies)
        size = path.stat().st_size

        def package_json() -> int:
            return sum(1 for _ in evtx.PyEvtxParser(str(path), indent=False).records_json())

        def package_xml() -> int:
            return sum(1 for _ in evtx.PyEvtxParser(str(path)).records())

        def parse_only() -> int:
            return sum(b.result.row_count for b in EvtxParser().parse_file(path, source=str(path)))

        def ingest(round_no: int) -> Callable[[], int]:
            def run() -> int:
                stats = ingest_paths(Warehouse(Path(tmp) / f"wh{round_no}"), [path])
                assert stats.records_read == stats.row_count + stats.rejects
                return stats.row_count

            return run

        package_json()  # warm the page cache and the libraries
        best: dict[str, tuple[int, float, float]] = {}
        for round_no in range(ROUNDS):
            for name, fn in (
                ("evtx package, records_json()", package_json),
                ("evtx package, records() (XML)", package_xml),
                ("knownfix parse -> Arrow batches", parse_only),
                ("knownfix ingest -> Delta events", ingest(round_no)),
            ):
                got = _timed(fn)
                if name not in best or got[1] < best[name][1]:
                    best[name] = got
        print(
            f"file: {size / 1e6:.1f} MB, {best['evtx package, records_json()'][0]:,} events ({copies} copies)"
        )
        for name, (n, wall, cpu) in best.items():
            print(f"  {name:34s} {n / wall:>10,.0f} events/s   {cpu / n * 1e6:6.2f} CPU us/event")
        base = best["evtx package, records_json()"]
        full = best["knownfix ingest -> Delta events"]
        parse = best["knownfix parse -> Arrow batches"]
        ratio = (full[0] / full[1]) / (base[0] / base[1])
        verdict = "meets" if ratio >= TARGET else "below"
        print(f"  ratio knownfix ingest / package iteration: {ratio:.2f} ({verdict} the {TARGET} target)")
        # the machine may be shared: CPU time is the steadier measure of knownfix's own share
        own = (parse[2] / parse[0] - base[2] / base[0]) * 1e6
        print(f"  knownfix's own work on top of the package's: {own:.2f} CPU us/event (parse)")
        print(
            f"  ratio by CPU time, ingest / package iteration: {(base[2] / base[0]) / (full[2] / full[0]):.2f}"
        )

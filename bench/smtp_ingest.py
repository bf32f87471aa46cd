"""``./dev bench smtp``: end-to-end ingest of a 2 M-line SMTP send log against DuckDB's CSV reader.

Both sides run in child processes on the same generated file (about 330 MB, in a temp dir):

* knownfix: ``ingest.backfill.ingest_paths`` into a fresh warehouse (detect, parse, derive,
  Delta commit), with its peak RSS (the target is < 1 GB whatever the file size);
* knownfix parse only (no commit), to show how the time splits between parsing and storing;
* DuckDB: ``COPY (SELECT * FROM read_csv(...)) TO '...parquet'`` with typed columns.

It prints rows/s of each and the ratio knownfix / DuckDB (target >= 0.5).
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LINES = 2_000_000
#: Each side runs this many times, alternating; the best run of each counts (the machine may be
#: shared, and a busy spell only ever makes a run slower). Peak memory is the worst of them.
ROUNDS = int(os.environ.get("KNOWNFIX_BENCH_ROUNDS", "3"))

HEADER = (
    "#Software: Microsoft Exchange Server\r\n"
    "#Version: 15.1.2507.6\r\n"
    "#Log-type: SMTP Send Protocol Log\r\n"
    "#Date: {date}\r\n"
    "#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context\r\n"
)

_CERT = (
    '" CN=mail.contoso.com, OU=IT, O=Contoso International (L.L.C), L=Dubai, S=Dubai, C=AE '
    'CN=thawte SHA256 SSL CA, O=""thawte, Inc."", C=US 0D92CFF6070B73AD5722EC8B4DA3389B '
    'AAA3D3DADA6891A2CCB3134D0B2D7764F1351BC4 *",Sending certificate Certificate subject Certificate '
    "issuer name Certificate serial number Certificate thumbprint Certificate subject alternate names"
)
_TLS_OK = (
    ',"TLS protocol SP_PROT_TLS1_2_CLIENT negotiation succeeded using bulk encryption algorithm '
    "CALG_AES_256 with strength 256 bits, MAC hash algorithm CALG_SHA_384 with strength 0 bits and key "
    'exchange algorithm CALG_ECDH_EPHEM with strength 384 bits"'
)
_EHLO_REPLY = (
    "250  BN3NAM01FT012.mail.protection.outlook.com Hello [{lip}] SIZE 157286400 PIPELINING DSN "
    "ENHANCEDSTATUSCODES STARTTLS 8BITMIME BINARYMIME CHUNKING,"
)
_NESTED = (
    ',"451 4.4.0 Primary target IP address responded with: ""451 5.7.3 Cannot achieve Exchange Server '
    'authentication."" Attempted failover to alternate host, but that did not succeed. Either there are '
    'no alternate hosts, or delivery failed to all alternate hosts. The last endpoint attempted was {rip}:25"'
)


def _session(sid: str, lip: str, lport: int, rip: str, kind: int) -> list[str]:
    """Event, data and context of one SMTP send session (the prefix is added by the caller)."""
    local, remote = f"{lip}:{lport}", f"{rip}:25"
    none = ",,"
    body = [
        ("", "*", f"{none}attempting to connect"),
        (local, "+", ",,"),
        (
            local,
            "<",
            ',"220 BN3NAM01FT012.mail.protection.outlook.com Microsoft ESMTP MAIL Service ready at '
            'Tue, 19 Jul 2016 12:13:14 +0000",',
        ),
        (local, ">", ",EHLO ex01.contoso.com,"),
        (local, "<", "," + _EHLO_REPLY.format(lip=lip)),
        (local, ">", ",STARTTLS,"),
        (local, "<", ",220 2.0.0 SMTP server ready,"),
        (local, "*", "," + _CERT),
    ]
    if kind == 0:
        body += [
            (local, "*", ",,TLS negotiation failed with error UnknownCredentials"),
            (local, "-", ",,Local"),
        ]
    elif kind == 1:
        body += [
            (local, "*", "," + _TLS_OK),
            (local, ">", ",EHLO ex01.contoso.com,"),
            (local, "<", ",451 5.7.3 Cannot achieve Exchange Server authentication.,"),
            (local, "*", "," + _NESTED.format(rip=rip)),
            (local, "-", ",,Remote"),
        ]
    else:
        n = lport % 6 + 1
        body += [
            (local, "*", "," + _TLS_OK),
            (local, ">", ",EHLO ex01.contoso.com,"),
            (local, "<", "," + _EHLO_REPLY.format(lip=lip)),
            (local, ">", f",MAIL FROM:<alice{lport}@contoso.com> SIZE={lport * 7},"),
        ]
        body += [(local, ">", f",RCPT TO:<user{i}.{lport}@fabrikam.com>,") for i in range(n)]
        body += [(local, "<", ",250 2.1.0 Sender OK,")] + [(local, "<", ",250 2.1.5 Recipient OK,")] * n
        body += [
            (local, ">", f",BDAT {lport * 7} LAST,"),
            (
                local,
                "<",
                f',"250 2.6.0 <{sid}@ex01.contoso.com> [InternalId=8{lport}, Hostname=BN3NAM01HT045.eop-'
                f"nam01.prod.protection.outlook.com] {lport * 7} bytes in 0.{lport % 1000:03d}, 180.535 KB/sec "
                'Queued mail for delivery",',
            ),
            (local, ">", ",QUIT,"),
            (local, "<", ",221 2.0.0 Service closing transmission channel,"),
            (local, "-", ",,Local"),
        ]
    return [f"{sid},{seq},{ep},{remote},{ev}{rest}" for seq, (ep, ev, rest) in enumerate(body)]


def generate(path: Path, lines: int = LINES, seed: int = 7) -> int:
    """Write a realistic SMTP send log of ``lines`` lines (headers included); returns its size."""
    rng = random.Random(seed)
    written = 0
    t0 = 1_468_930_394.0  # 2016-07-19T12:13:14Z
    restart_at = lines // 2
    with path.open("w", encoding="utf-8", newline="") as f:
        header = HEADER.format(date="2016-07-19T12:13:14.000Z")
        f.write(header)
        written += 5
        sid_n = 0x08D3AFC581A92DD3
        out: list[str] = []
        while written < lines:
            sid_n += 1
            kind = 0 if rng.random() < 0.03 else 1 if rng.random() < 0.03 else 2
            rip = f"104.47.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            session = _session(f"{sid_n:016X}", "10.1.2.3", rng.randrange(20000, 65000), rip, kind)
            for rest in session:
                t0 += rng.random() * 0.05
                ms = int(t0 * 1000)
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"
                out.append(f"{stamp},Outbound to Office 365,{rest}\r\n")
                written += 1
                if written == restart_at:
                    out.append(HEADER.format(date=stamp))  # a service restart writes the header again
                    written += 5
                if written >= lines:
                    break
            if len(out) > 50_000:
                f.write("".join(out))
                out.clear()
        f.write("".join(out))
    return path.stat().st_size


def _child_ingest(log: str, wh_dir: str, parse_only: bool) -> None:
    """Run in a child process: time one ingest (or parse) and report figures as JSON."""
    from ingest.backfill import ingest_paths
    from ingest.reader import read_chunks
    from parsers.base import StreamParser
    from parsers.registry import detect
    from warehouse.store import Warehouse

    start = time.perf_counter()
    if parse_only:
        path = Path(log)
        with path.open("rb") as f:
            head = f.read(65536)
        parser_cls = detect(head, path)
        parser = parser_cls() if parser_cls is not None else None
        if not isinstance(parser, StreamParser):
            raise SystemExit(f"{log}: not detected as a line-oriented log")
        state = parser.new_state()
        rows = rejects = 0
        with path.open("rb") as f:
            for chunk in read_chunks(f, 0):
                res = parser.parse(chunk.data, source=log, base_offset=chunk.start, state=state)
                rows += res.row_count
                rejects += res.rejects.num_rows
        figures: dict[str, object] = {"rows": rows, "rejects": rejects, "format": parser.name}
    else:
        stats = ingest_paths(Warehouse(wh_dir), [Path(log)])
        figures = {"rows": stats.row_count, "rejects": stats.rejects, "commits": stats.commits}
    figures["seconds"] = time.perf_counter() - start
    figures["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(figures))


_DUCKDB_COLUMNS = (
    "{'date_time': 'TIMESTAMPTZ', 'connector_id': 'VARCHAR', 'session_id': 'VARCHAR', "
    "'sequence_number': 'BIGINT', 'local_endpoint': 'VARCHAR', 'remote_endpoint': 'VARCHAR', "
    "'event': 'VARCHAR', 'data': 'VARCHAR', 'context': 'VARCHAR'}"
)


def _child_duckdb(log: str, out: str) -> None:
    import duckdb

    start = time.perf_counter()
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * FROM read_csv('{log}', auto_detect=false, header=false, comment='#', delim=',', quote='\"', "
        f"escape='\"', strict_mode=false, columns={_DUCKDB_COLUMNS})) TO '{out}' (FORMAT parquet)"
    )
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "rows": rows[0] if rows else 0,
                "seconds": seconds,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def peak_rss_mb() -> float:
    """This process's own peak resident memory.

    Not ``getrusage``: its ``ru_maxrss`` survives exec, so a child forked from a large parent
    would report the parent's size; ``VmHWM`` belongs to the process image and starts anew.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_child(*args: str) -> dict[str, float]:
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-m", "bench.smtp_ingest", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench child {args[0]} failed: {proc.stderr.strip()[-2000:]}")
    figures: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    lines = int(os.environ.get("KNOWNFIX_BENCH_LINES", LINES))
    with tempfile.TemporaryDirectory(prefix="knownfix-bench-") as tmp:
        log = Path(tmp) / "SEND2016071912-1.LOG"
        t = time.perf_counter()
        size = generate(log, lines)
        print(
            f"generated {lines:,} lines, {size / 1e6:.0f} MB in {time.perf_counter() - t:.1f} s: {log.name}"
        )
        runs: dict[str, list[dict[str, float]]] = {"parse": [], "ingest": [], "duck": []}
        for round_no in range(ROUNDS):  # alternating, so a busy spell hurts every side alike
            runs["parse"].append(_run_child("--parse", str(log)))
            runs["ingest"].append(_run_child("--ingest", str(log), str(Path(tmp) / f"wh{round_no}")))
            runs["duck"].append(
                _run_child("--duckdb", str(log), str(Path(tmp) / f"duckdb{round_no}.parquet"))
            )
        parse, ingest, duck = (min(runs[k], key=lambda r: r["seconds"]) for k in ("parse", "ingest", "duck"))
        peak = max(r["peak_rss_mb"] for r in runs["ingest"])
    k_rate = ingest["rows"] / ingest["seconds"]
    p_rate = parse["rows"] / parse["seconds"]
    d_rate = duck["rows"] / duck["seconds"]
    print(
        f"knownfix parse only : {parse['rows']:>10,.0f} rows + {parse['rejects']:,.0f} rejects in "
        f"{parse['seconds']:6.2f} s = {p_rate:>10,.0f} rows/s  (peak RSS {parse['peak_rss_mb']:.0f} MB)"
    )
    print(
        f"knownfix ingest     : {ingest['rows']:>10,.0f} rows + {ingest['rejects']:,.0f} rejects in "
        f"{ingest['seconds']:6.2f} s = {k_rate:>10,.0f} rows/s  (peak RSS {peak:.0f} MB, "
        f"{ingest['commits']:.0f} commits)"
    )
    print(
        f"duckdb csv->parquet : {duck['rows']:>10,.0f} rows in {duck['seconds']:6.2f} s = {d_rate:>10,.0f} rows/s"
        f"  (peak RSS {duck['peak_rss_mb']:.0f} MB)"
    )
    print(
        f"ratio knownfix/duckdb: {k_rate / d_rate:.2f} (target >= 0.5; best of {ROUNDS} alternating runs each); "
        f"store share of ingest time: {1 - parse['seconds'] / ingest['seconds']:.0%}; "
        f"peak RSS {'within' if peak < 1024 else 'OVER'} 1 GB"
    )


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "--ingest":
        _child_ingest(sys.argv[2], sys.argv[3], parse_only=False)
    elif mode == "--parse":
        _child_ingest(sys.argv[2], "", parse_only=True)
    elif mode == "--duckdb":
        _child_duckdb(sys.argv[2], sys.argv[3])
    else:
        main()

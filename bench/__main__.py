"""``./dev bench [NAME...]``: run the named benchmarks (all when none is named)."""

from __future__ import annotations

import importlib
import sys

#: name -> "module:function"; each function takes no arguments and prints its figures.
BENCHES: dict[str, str] = {
    "rules": "bench.rules_scan:main",
    "smtp": "bench.smtp_ingest:main",
    "evtx": "bench.evtx_events:main",
    "tail": "bench.tail_latency:main",
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHES) or 'none yet'}")
        return 2
    for name in names:
        module, func = BENCHES[name].split(":")
        print(f"== bench {name}")
        getattr(importlib.import_module(module), func)()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Data flows one way: each package imports only the packages DESIGN.md allows it."""

from __future__ import annotations

import ast

from tests.conftest import ROOT

#: package -> the knownfix packages it may import (DESIGN.md, "Packages").
ALLOWED: dict[str, set[str]] = {
    "parsers": set(),
    "warehouse": {"parsers"},
    "rules": {"warehouse", "parsers"},
    "ingest": {"parsers", "warehouse", "rules"},
    "tickets": {"warehouse", "parsers"},
    "knownfix": {"parsers", "warehouse", "rules", "ingest", "tickets"},
}


def _imports(path: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_imports_follow_the_flow() -> None:
    wrong = []
    for package, allowed in ALLOWED.items():
        for source in sorted((ROOT / package).rglob("*.py")):
            rel = str(source.relative_to(ROOT))
            for imported in _imports(rel) & set(ALLOWED):
                if imported != package and imported not in allowed:
                    wrong.append(f"{rel} imports {imported}")
    assert not wrong, "imports against the data flow:\n" + "\n".join(wrong)

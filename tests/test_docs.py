"""Docs that cannot drift: every command the CLI offers is documented in the README."""

from __future__ import annotations

import typer.main

from knownfix.cli import app
from tests.conftest import ROOT


def _commands() -> list[str]:
    group = typer.main.get_command(app)
    names: list[str] = []
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        sub = getattr(cmd, "commands", None)
        if sub:
            names.extend(f"{name} {s}" for s in sub)
        else:
            names.append(name)
    return names


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [c for c in _commands() if f"knownfix {c}" not in readme]
    assert not missing, f"document these commands in README.md: {missing}"


def test_every_command_has_help() -> None:
    group = typer.main.get_command(app)
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        assert (cmd.help or "").strip(), f"command {name} has no help text"

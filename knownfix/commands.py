"""Registry of the command groups kept in their own modules; each adds itself to the app."""

from __future__ import annotations

from collections.abc import Callable

import typer

from knownfix.identity_cli import register as register_identity
from knownfix.rules_cli import register as register_rules
from knownfix.tail_cli import register as register_tail
from knownfix.tickets_cli import register as register_tickets

Registrar = Callable[[typer.Typer], None]

#: Each entry adds commands to the root app, e.g. ``knownfix rules ...``.
REGISTRARS: list[Registrar] = [
    register_identity,
    register_tickets,
    register_rules,
    register_tail,
]

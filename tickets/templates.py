"""Ticket titles and bodies from Jinja2 templates, overridable per installation.

The bundled templates are in ``tickets/templates``; a folder named by ``tickets.templates`` in the
config overrides any of them by file name (``title.j2``, ``open.j2``, ``update.j2``, ``reopen.j2``,
``resolve.j2``, ``_macros.j2``). Templates run sandboxed (a template is configuration, not code)
and with strict undefined names, so a typo fails at start-up instead of printing nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from tickets.base import Kind, marker
from tickets.errors import SinkConfigError
from tickets.markup import Markup
from tickets.model import Fix, FixCause, Incident, News, Sample

BUNDLED = Path(__file__).parent / "templates"
MAX_SAMPLE_CHARS = 2000


@functools.lru_cache(maxsize=8)
def _environment(override: str | None) -> SandboxedEnvironment:
    """One compiled-template cache per template folder (dispatchers are cheap to create)."""
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader([*([override] if override else []), str(BUNDLED)]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # escaping is the markup's job (m.text, m.code), per target
    )
    env.filters.update(when=when, clip=clip, shell_arg=shell_arg)
    return env


def when(value: dt.datetime | None) -> str:
    if value is None:
        return "unknown"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def clip(text: str, limit: int = MAX_SAMPLE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shell_arg(text: str) -> str:
    """``text`` as one shell argument a person can read and paste: in double quotes when that
    needs no escaping, else a quoted here-document (SQL with quoted identifiers, several lines)."""
    if "\n" not in text and not any(c in text for c in '"\\$`!'):
        return f'"{text}"'
    end = "SQL"
    while end in text:
        end += "_END"
    return f"\"$(cat <<'{end}'\n{text}\n{end}\n)\""


def duration(seconds: float) -> str:
    """``300`` → ``5 minutes``: for notes people read."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{int(seconds)} seconds"


class Renderer:
    """Renders the messages of one markup; ``check()`` proves the templates work at start-up."""

    def __init__(self, markup: Markup, override: Path | None = None) -> None:
        self.markup = markup
        if override is not None and not override.is_dir():
            raise SinkConfigError(f"tickets.templates: {override} is not a folder of .j2 templates")
        self.env = _environment(str(override) if override is not None else None)

    def render(
        self,
        kind: Kind,
        inc: Incident,
        *,
        seq: int,
        news: News | None = None,
        previous: list[str] | None = None,
        quiet: float | None = None,
        max_body: int = 60000,
        max_title: int = 255,
        max_samples: int = 5,
    ) -> tuple[str, str]:
        """(title, body) for ``kind``; bodies over ``max_body`` lose samples, then are cut."""
        samples = inc.samples[:max_samples]
        news_used = replace(news, samples=news.samples[-max_samples:]) if news else None
        ctx: dict[str, Any] = {
            "m": self.markup,
            "inc": inc,
            "news": news_used,
            "samples": samples,
            "previous": previous or [],
            "marker": marker(inc.token, seq),
            "quiet": duration(quiet) if quiet is not None else "",
        }
        title = " ".join(self._render("title.j2", ctx).split())
        if len(title) > max_title:
            title = title[: max_title - 1] + "…"
        body = self._render(f"{kind}.j2", ctx)
        if len(body) > max_body and (samples or (news_used and news_used.samples)):
            ctx["samples"] = samples[:1]
            if news_used:
                ctx["news"] = replace(news_used, samples=news_used.samples[-1:])
            body = self._render(f"{kind}.j2", ctx)
        if len(body) > max_body:
            tail = (
                "\n\n"
                + self.markup.text("(cut to fit the tracker)")
                + "\n\n"
                + self.markup.marker(ctx["marker"])
            )
            body = body[: max_body - len(tail)] + tail
        return title, body

    def _render(self, name: str, ctx: dict[str, Any]) -> str:
        try:
            text = self.env.get_template(name).render(ctx)
        except jinja2.TemplateError as exc:
            raise SinkConfigError(f"ticket template {_where(exc, name)}: {exc}") from None
        return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"

    def check(self) -> None:
        """Render every template once with an example incident; raises on a broken template."""
        inc = example_incident()
        news = News(count=2, hits=1, first_seen=inc.first_seen, last_seen=inc.last_seen, samples=inc.samples)
        for kind in ("open", "update", "reopen", "resolve"):
            self.render(kind, inc, seq=1, news=news, previous=["https://example.invalid/1"], quiet=300)  # type: ignore[arg-type]


def _where(exc: jinja2.TemplateError, name: str) -> str:
    """``file:line`` of a template error (syntax errors carry it; runtime errors are in the traceback)."""
    lineno = getattr(exc, "lineno", None)
    filename = getattr(exc, "filename", None)
    if lineno is None:
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if frame.filename.endswith(".j2"):
                filename, lineno = frame.filename, frame.lineno
                break
    return f"{filename or name}:{lineno if lineno is not None else '?'}"


def example_incident() -> Incident:
    t = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    return Incident(
        dedup_key="example|host=ex01",
        rule_id="example",
        rule_title="Example",
        severity="high",
        kind="signature",
        table_name="smtp",
        group_key="host=ex01",
        fix=Fix("Do this.", [FixCause("cause", "check", ["step"], ["Get-Thing"])]),
        references=["https://example.invalid/doc"],
        query="select 1",
        first_seen=t,
        last_seen=t,
        count=1,
        seq=1,
        last_activity=t,
        samples=[Sample("a.log", 0, 1, "line")],
    )

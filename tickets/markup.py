"""Markups of the trackers, so that log text in a ticket is shown as text and never as markup.

Log lines are hostile input: an Exchange line can hold ``<script>``, ``*``, ``{noformat}``,
``@user`` or ``#123``. Each markup escapes inline text for its renderer and puts sample lines in
its verbatim block, neutralising the one sequence that would end that block early. Templates
call these helpers (``m.text``, ``m.code``, ``m.heading`` …) and so work in every markup.
"""

from __future__ import annotations

import re

ZWSP = "\u200b"  # breaks a closing sequence without changing what a reader sees
_URL = re.compile(r"^https?://[^\s<>\"'`|\[\]{}]+$")


def _one_line(s: object) -> str:
    return " ".join(str(s if s is not None else "").split())


class Markup:
    """Plain text (ServiceNow): no markup, but ``[code]`` tags would let HTML through."""

    name = "plain"

    def text(self, s: object) -> str:
        return _neutralise_code_tag(_one_line(s))

    def bold(self, s: object) -> str:
        return self.text(s)

    def mono(self, s: object) -> str:
        return self.text(s)

    def heading(self, s: object, level: int = 2) -> str:
        t = self.text(s)
        return f"{t}\n{('=' if level <= 2 else '-') * len(t)}"

    def item(self, s: str) -> str:
        return f"- {s}"

    def numbered(self, n: int, s: str) -> str:
        return f"{n}. {s}"

    def code(self, s: object) -> str:
        lines = _neutralise_code_tag(str(s if s is not None else "")).splitlines() or [""]
        return "\n".join("    " + ln for ln in lines)

    def link(self, url: str, label: str | None = None) -> str:
        return f"{self.text(label)} ({url})" if label else self.text(url)

    def marker(self, s: str) -> str:
        """The ``knownfix-key:`` line, kept literal in the stored text so lookups can find it."""
        return s


def _neutralise_code_tag(s: str) -> str:
    return re.sub(r"\[(/?code)\]", lambda m: f"[{ZWSP}{m.group(1)}]", s, flags=re.IGNORECASE)


class Markdown(Markup):
    """CommonMark / GitHub-flavoured Markdown (GitHub, the folder sink, Redmine common_mark)."""

    name = "markdown"
    _SPECIAL = re.compile(r"([\\`*_\[\]<>#|~@!&{}])")
    #: what would start a block (list, heading underline, quote) at the beginning of a line
    _LEADING = re.compile(r"^([-+=>]|\d+(?=[.)]))")

    def text(self, s: object) -> str:
        t = self._SPECIAL.sub(r"\\\1", _one_line(s))
        return self._LEADING.sub(
            lambda m: m.group(1) + "\\" if m.group(1)[0].isdigit() else "\\" + m.group(1), t
        )

    def bold(self, s: object) -> str:
        return f"**{self.text(s)}**"

    def mono(self, s: object) -> str:
        t = _one_line(s)
        run = max((len(r) for r in re.findall(r"`+", t)), default=0)
        ticks = "`" * (run + 1)
        pad = " " if t.startswith("`") or t.endswith("`") or not t else ""
        return f"{ticks}{pad}{t}{pad}{ticks}"

    def heading(self, s: object, level: int = 2) -> str:
        return f"{'#' * level} {self.text(s)}"

    def code(self, s: object) -> str:
        body = str(s if s is not None else "")
        run = max((len(r) for r in re.findall(r"`+", body)), default=0)
        fence = "`" * max(3, run + 1)
        return f"{fence}text\n{body}\n{fence}"

    def link(self, url: str, label: str | None = None) -> str:
        if not _URL.match(url):
            return self.text(url)
        return f"[{self.text(label)}](<{url}>)" if label else f"<{url}>"

    def marker(self, s: str) -> str:
        return f"`{s}`"


class Textile(Markup):
    """Redmine's default Textile: entities for inline text, ``<pre>`` for lines.

    Checked against Redmine 5.0's own formatter: inside ``<pre>`` everything is literal except a
    ``</pre>``; outside, numeric entities show the character and stop Textile, HTML and Redmine
    links (``#12``, ``commit:``) from being interpreted.
    """

    name = "textile"
    #: markup characters; ``-`` inside a word and ``:`` inside a time cannot start markup and stay
    _SPECIAL = re.compile(
        r"(?<![0-9A-Za-z])-|-(?![0-9A-Za-z])|(?<!\d):|:(?!\d)|[&<>\"'*_+^~%@!()\[\]{}|=#`\\$]"
    )

    def text(self, s: object) -> str:
        return self._SPECIAL.sub(lambda m: f"&#{ord(m.group(0))};", _one_line(s))

    def bold(self, s: object) -> str:
        return f"*{self.text(s)}*"

    def mono(self, s: object) -> str:
        return f"<code>{self.text(s)}</code>"

    def heading(self, s: object, level: int = 2) -> str:
        return f"h{min(level + 1, 6)}. {self.text(s)}"

    def item(self, s: str) -> str:
        return f"* {s}"

    def numbered(self, n: int, s: str) -> str:
        return f"# {s}"

    def code(self, s: object) -> str:
        body = re.sub(r"<(/?pre)", lambda m: f"<{ZWSP}{m.group(1)}", str(s or ""), flags=re.IGNORECASE)
        return f"<pre>\n{body}\n</pre>"

    def link(self, url: str, label: str | None = None) -> str:
        if not _URL.match(url):
            return self.text(url)
        return f'"{self.text(label)}":{url}' if label else url

    def marker(self, s: str) -> str:
        return f"@{s}@"


class JiraWiki(Textile):
    """Jira wiki markup (REST v2): Textile's bold, headings and lists, with backslash escapes,
    ``{{mono}}``, ``{noformat}`` blocks and ``[label|url]`` links of its own."""

    name = "jira"
    #: the characters Jira's renderer treats as escapable after a backslash
    _ESCAPABLE = frozenset("-#*_+?^~|%{}[]()!@")
    _WORD = re.compile(r"[0-9A-Za-z]")

    def text(self, s: object) -> str:
        t = _one_line(s)
        out = []
        for i, c in enumerate(t):
            inner = 0 < i < len(t) - 1 and self._WORD.match(t[i - 1]) and self._WORD.match(t[i + 1])
            if c in self._ESCAPABLE and not (c == "-" and inner):  # a-b cannot be markup
                out.append("\\" + c)
            else:
                out.append(c)
            if c == "\\" and i + 1 < len(t) and (t[i + 1] == "\\" or t[i + 1] in self._ESCAPABLE):
                out.append(ZWSP)  # "\\\\" is a line break and "\\*" an escape: keep the backslash literal
        return "".join(out)

    def mono(self, s: object) -> str:
        return "{{" + self.text(s) + "}}"

    def code(self, s: object) -> str:
        body = re.sub(r"\{(noformat)\}", lambda m: "{" + ZWSP + m.group(1) + "}", str(s or ""), flags=re.I)
        return "{noformat}\n" + body + "\n{noformat}"

    def link(self, url: str, label: str | None = None) -> str:
        if not _URL.match(url):
            return self.text(url)
        return f"[{self.text(label)}|{url}]" if label else f"[{url}]"

    def marker(self, s: str) -> str:
        return "{{" + s + "}}"


MARKUPS: dict[str, Markup] = {m.name: m for m in (Markup(), Markdown(), Textile(), JiraWiki())}

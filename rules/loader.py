"""Loading rule files: YAML with line numbers, the match syntax, validation, every problem at once.

A knownfix rule file is a mapping with ``rules:`` (a list of rules) and optionally ``headers:``
(named file headers that examples prepend, e.g. an Exchange log's ``#Fields:`` block). A SigmaHQ
rule file (``logsource:`` + ``detection:``) loads too, as a detection without a fix.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from rules import sigma
from rules.errors import Problem, RuleLoadError, UnknownRuleError
from rules.model import (
    MODIFIERS,
    AllOf,
    AnyOf,
    Cause,
    Condition,
    Correlate,
    Example,
    Examples,
    FieldTest,
    Fix,
    NotOf,
    Op,
    Rule,
    Threshold,
)
from rules.schema import TableSchema, known_tables, merge_schemas, schemas_from_sample
from rules.validate import check_rule
from rules.yamlpos import PosDict, PosList, error_line, line_of
from rules.yamlpos import load as load_yaml

LIBRARY_DIR = Path(__file__).resolve().parent / "library"
#: Tables whose parsers are still to be registered: rules naming them load as "waiting".
PENDING_TABLES = frozenset({"smtp", "message_tracking", "iis", "events", "sync_errors", "hybrid_wizard"})
_SEED = re.compile(r"^seed:(\d{3}_[0-9a-f]{16}\.txt)$")
_FILE_KEYS = ("rules", "headers")
_SECTIONS: dict[str, type[BaseModel]] = {
    "threshold": Threshold,
    "correlate": Correlate,
    "fix": Fix,
    "causes": Cause,
    "examples": Examples,
    "match": Example,
    "no_match": Example,
}


@dataclass
class RuleSet:
    """The loaded rules, the file headers their examples use, and every problem found."""

    rules: list[Rule] = field(default_factory=list)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # rule id -> headers
    problems: list[Problem] = field(default_factory=list)
    #: table -> ids of rules that wait for the table's parser
    waiting: dict[str, list[str]] = field(default_factory=dict)
    #: rule id -> the schema it was checked against (fixed, or from its examples)
    schemas: dict[str, TableSchema] = field(default_factory=dict)

    def get(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        close = difflib.get_close_matches(rule_id, [r.id for r in self.rules], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `knownfix rules list` shows them"
        raise UnknownRuleError(f"no rule {rule_id!r}{hint}")

    @property
    def active(self) -> list[Rule]:
        """Rules whose table has a parser (the others wait)."""
        blocked = {i for ids in self.waiting.values() for i in ids}
        return [r for r in self.rules if r.id not in blocked]

    def for_table(self, table: str) -> list[Rule]:
        return [r for r in self.active if r.table == table]

    def tables(self) -> list[str]:
        return sorted({r.table for r in self.active})

    def raise_for_problems(self) -> None:
        if self.problems:
            raise RuleLoadError(self.problems)


def rule_files(paths: Iterable[Path]) -> list[Path]:
    """``*.yaml`` / ``*.yml`` files under ``paths`` (files or folders), in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()))
        else:
            found.append(path)
    return found


def load_rules(
    extra: Iterable[Path] = (), *, library: bool = True, tables: dict[str, TableSchema] | None = None
) -> RuleSet:
    """Load the bundled library (unless ``library=False``) and ``extra`` files or folders."""
    tables = known_tables() if tables is None else tables
    paths = ([LIBRARY_DIR] if library else []) + list(extra)
    rs = RuleSet()
    origins: dict[str, str] = {}
    for path in rule_files(paths):
        if not path.is_file():
            rs.problems.append(
                Problem(str(path), None, "rule file or folder does not exist; check the rules: setting")
            )
            continue
        for rule, headers in _load_file(path, rs.problems):
            if rule.id in origins:
                rs.problems.append(
                    Problem(
                        rule.origin,
                        None,
                        f"rule id {rule.id} is already defined at {origins[rule.id]}; ids must be unique",
                        rule.id,
                    )
                )
                continue
            origins[rule.id] = rule.origin
            rs.rules.append(rule)
            rs.headers[rule.id] = headers
    _check_all(rs, tables)
    return rs


def _rule_schema(rule: Rule, headers: dict[str, str], tables: dict[str, TableSchema]) -> TableSchema | None:
    """The table's fixed schema, or (for header-driven tables) what the rule's examples parse into."""
    if rule.table in tables:
        return tables[rule.table]
    found = []
    for example in [*rule.examples.match, *rule.examples.no_match]:
        parsed = schemas_from_sample(example.render(headers), example.name or "example.log")
        if rule.table in parsed:
            found.append(parsed[rule.table])
    return TableSchema(rule.table, merge_schemas(found)) if found else None


def _check_all(rs: RuleSet, tables: dict[str, TableSchema]) -> None:
    by_id = {r.id: r for r in rs.rules}
    schemas = {r.id: _rule_schema(r, rs.headers.get(r.id, {}), tables) for r in rs.rules}
    rs.schemas = {k: v for k, v in schemas.items() if v is not None}
    for rule in rs.rules:
        file, _, line = rule.origin.rpartition(":")
        schema = schemas[rule.id]
        if schema is None:
            if rule.table in PENDING_TABLES:
                rs.waiting.setdefault(rule.table, []).append(rule.id)
            else:
                known = ", ".join(sorted(set(tables) | PENDING_TABLES))
                rs.problems.append(
                    Problem(
                        file,
                        int(line),
                        f"unknown table {rule.table!r} (a table whose columns come from the log's header "
                        f"needs an example with that header); tables: {known}",
                        rule.id,
                    )
                )
            continue
        partner = by_id.get(rule.correlate.followed_by) if rule.correlate else None
        partner_schema = schemas.get(partner.id) if partner else None
        for found_line, message in check_rule(rule, schema, partner, partner_schema):
            rs.problems.append(Problem(file, found_line or int(line), message, rule.id))
        for ref in [
            *rule.references,
            *(r for c in (rule.fix.causes if rule.fix else []) for r in c.references),
        ]:
            if not (ref.startswith(("https://", "http://")) or _SEED.match(ref)):
                rs.problems.append(
                    Problem(
                        file,
                        int(line),
                        f"reference {ref!r} must be a URL or seed:<file name of ../shared/seeds>",
                        rule.id,
                    )
                )
    for rule in rs.rules:  # a correlation whose partner waits, waits too
        if rule.correlate is not None:
            partner = by_id.get(rule.correlate.followed_by)
            if partner is not None and partner.table in rs.waiting and rule.table not in rs.waiting:
                rs.waiting.setdefault(partner.table, []).append(rule.id)


def _load_file(path: Path, problems: list[Problem]) -> list[tuple[Rule, dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(str(path), None, f"cannot read the rule file: {exc}"))
        return []
    try:
        doc = load_yaml(text)
    except yaml.YAMLError as exc:
        problems.append(
            Problem(str(path), error_line(exc), f"not valid YAML: {getattr(exc, 'problem', exc)}")
        )
        return []
    if isinstance(doc, PosDict) and "detection" in doc and "logsource" in doc:
        rules, sigma_problems = sigma.load_sigma(text, str(path))
        problems.extend(sigma_problems)
        return [(r, {}) for r in rules]
    if isinstance(doc, PosDict) and "id" in doc and "rules" not in doc:
        doc = PosDict(rules=PosList([doc]))
        doc.key_lines = {"rules": 1}
        doc["rules"].item_lines = [doc["rules"][0].line]
    if not isinstance(doc, PosDict) or not isinstance(doc.get("rules"), list):
        problems.append(
            Problem(
                str(path),
                1,
                "a rule file is a mapping with `rules:` (a list of rules) and optional `headers:`",
            )
        )
        return []
    for key in doc:
        if key not in _FILE_KEYS:
            problems.append(
                Problem(
                    str(path),
                    line_of(doc, [key]),
                    f"unknown key {key!r}; valid keys of a rule file: {', '.join(_FILE_KEYS)}",
                )
            )
    headers = doc.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        problems.append(
            Problem(str(path), line_of(doc, ["headers"]), "headers: maps a name to the header text")
        )
        headers = {}
    loaded = []
    for i, raw in enumerate(doc["rules"]):
        rule = _load_rule(raw, str(path), line_of(doc, ["rules", i]) or 1, problems)
        if rule is None:
            continue
        for ex in [*rule.examples.match, *rule.examples.no_match]:
            if ex.header is not None and ex.header not in headers:
                known = ", ".join(headers) or "none defined"
                problems.append(
                    Problem(
                        str(path),
                        int(rule.origin.rpartition(":")[2]),
                        f"example header {ex.header!r} is not defined under headers: ({known})",
                        rule.id,
                    )
                )
        loaded.append((rule, dict(headers)))
    return loaded


def _load_rule(raw: Any, file: str, line: int, problems: list[Problem]) -> Rule | None:
    if not isinstance(raw, PosDict):
        problems.append(
            Problem(file, line, "each item of rules: is a mapping (id:, title:, table:, match:, ...)")
        )
        return None
    rule_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    before = len(problems)
    match: Condition | None = None
    if "match" not in raw:
        problems.append(
            Problem(file, line, "a rule needs `match:` (the field tests of its signature)", rule_id)
        )
    else:
        match = _parse_condition(raw["match"], raw, ["match"], file, problems, rule_id)
    data = {k: v for k, v in raw.items() if k != "match"}
    data["origin"] = f"{file}:{line}"
    data["match"] = match if match is not None else FieldTest(field="_", values=("",))
    try:
        rule = Rule.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = [p for p in err["loc"] if isinstance(p, str | int)]
            where = line_of(raw, loc) or line
            problems.append(Problem(file, where, _message(err, loc), rule_id))
        return None
    return rule if len(problems) == before else None


def _message(err: Any, loc: list[str | int]) -> str:
    dotted = ".".join(str(p) for p in loc)
    if err["type"] == "extra_forbidden":
        parents = [p for p in loc[:-1] if isinstance(p, str)]
        model: type[BaseModel] = _SECTIONS.get(parents[-1], Rule) if parents else Rule
        valid = ", ".join(k for k in model.model_fields if k != "origin")
        return f"unknown key {loc[-1]!r}; valid keys here: {valid}"
    if err["type"] == "missing":
        return f"missing `{dotted}`"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{dotted}: {msg}" if dotted else msg


def _parse_condition(
    node: Any, root: PosDict, path: list[str | int], file: str, problems: list[Problem], rule_id: str | None
) -> Condition | None:
    """``match:`` YAML to a condition tree; a mapping's keys are all required (``all``)."""

    def fail(message: str, at: list[str | int]) -> None:
        problems.append(Problem(file, line_of(root, at), message, rule_id))

    if not isinstance(node, dict) or not node:
        fail("a condition is a mapping of field tests (`field|modifier: value`) or all:/any:/not:", path)
        return None
    items: list[Condition] = []
    for key, value in node.items():
        at = [*path, key]
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                fail(f"`{key}:` takes a list of conditions", at)
                continue
            subs = [_parse_condition(v, root, [*at, i], file, problems, rule_id) for i, v in enumerate(value)]
            if any(s is None for s in subs):
                continue
            parts = tuple(s for s in subs if s is not None)
            items.append(AllOf(items=parts) if key == "all" else AnyOf(items=parts))
        elif key == "not":
            sub = _parse_condition(value, root, at, file, problems, rule_id)
            if sub is not None:
                items.append(NotOf(item=sub))
        elif isinstance(key, str):
            test = _parse_test(key, value, line_of(root, at), fail, at)
            if test is not None:
                items.append(test)
        else:
            fail(f"{key!r} is not a field name", at)
    if len(items) != len(node):
        return None
    return items[0] if len(items) == 1 else AllOf(items=tuple(items))


def _parse_test(key: str, value: Any, line: int | None, fail: Any, at: list[str | int]) -> FieldTest | None:
    name, *mods = key.split("|")
    op, match_all, cased = Op.equals, False, False
    for mod in mods:
        meaning = MODIFIERS.get(mod.strip().lower())
        if meaning is None:
            fail(f"unknown modifier {mod!r} in `{key}`; modifiers: {', '.join(MODIFIERS)}", at)
            return None
        if meaning == "all":
            match_all = True
        elif meaning == "cased":
            cased = True
        else:
            assert isinstance(meaning, Op)
            op = meaning
    values = list(value) if isinstance(value, list) else [value]
    if not values or any(v is None or isinstance(v, dict | list) for v in values):
        fail(f"`{key}` takes a value or a list of values (text, number, true/false)", at)
        return None
    if op in (Op.contains, Op.starts_with, Op.ends_with, Op.regex):
        values = [v if isinstance(v, str | bool) else str(v) for v in values]
    return FieldTest(
        field=name.strip(), op=op, values=tuple(values), match_all=match_all, cased=cased, line=line
    )

"""YAML loading that remembers the line of every key and list item.

Errors in a rule must name the line to change; PyYAML's safe loader forgets positions once it
builds dicts, so this loader builds ``PosDict``/``PosList`` that keep them. Only plain YAML data
is produced (no tags, no object construction): a rule is data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml
from yaml.nodes import MappingNode, SequenceNode


class PosDict(dict[Any, Any]):
    """A dict with ``line`` (of the mapping) and ``key_lines`` (1-based line of each key)."""

    line: int = 0
    key_lines: dict[Any, int]


class PosList(list[Any]):
    """A list with ``line`` and ``item_lines`` (1-based line of each item)."""

    line: int = 0
    item_lines: list[int]


_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser when PyYAML has it


class _Loader(_Base):  # type: ignore[valid-type,misc]
    def construct_pos_mapping(self, node: MappingNode, deep: bool = False) -> PosDict:
        result = PosDict()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain value", key_node.start_mark
                )
            result[key] = self.construct_object(value_node, deep=True)
            result.key_lines[key] = key_node.start_mark.line + 1
        return result

    def construct_pos_sequence(self, node: SequenceNode, deep: bool = False) -> PosList:
        result = PosList(self.construct_object(child, deep=True) for child in node.value)
        result.line = node.start_mark.line + 1
        result.item_lines = [child.start_mark.line + 1 for child in node.value]
        return result


# YAML 1.2 booleans: only true/false. YAML 1.1 also reads on/off/yes/no as booleans, which would
# turn `on:` (the key of a correlation) or a value `no` into True/False behind the rule author's back.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_pos_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _Loader.construct_pos_sequence)


def load(text: str) -> Any:
    """Parse YAML text into plain data whose dicts and lists know their lines.

    Raises ``yaml.YAMLError`` (with ``problem_mark``) on bad syntax.
    """
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: plain data only


def line_of(data: Any, path: Sequence[str | int]) -> int | None:
    """The line of the deepest element of ``path`` that can be found in ``data``."""
    line: int | None = getattr(data, "line", None) or None
    node = data
    for step in path:
        if isinstance(node, PosDict) and step in node:
            line = node.key_lines.get(step, line)
            node = node[step]
        elif isinstance(node, PosList) and isinstance(step, int) and 0 <= step < len(node):
            line = node.item_lines[step]
            node = node[step]
        else:
            break
    return line


def error_line(exc: yaml.YAMLError) -> int | None:
    mark = getattr(exc, "problem_mark", None)
    return mark.line + 1 if mark is not None else None

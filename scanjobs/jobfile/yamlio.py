"""Safe YAML loading that refuses duplicate keys and remembers the line of every value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["LineMap", "load_yaml"]

# Path of keys/indexes from the document root -> 1-based line number.
LineMap = dict[tuple[str | int, ...], int]


class _Loader(yaml.SafeLoader):
    """SafeLoader without implicit timestamps: dates stay text, parsed where they are used."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _walk(node: yaml.Node, path: tuple[str | int, ...], lines: LineMap, errors: list[str]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                where = ".".join(str(p) for p in (*path, key))
                errors.append(f"line {line}: duplicate key {where!r} (first at line {seen[key]})")
            seen.setdefault(key, line)
            _walk(value_node, (*path, key), lines, errors)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines, errors)


def load_yaml(text: str, source: Path) -> tuple[Any, LineMap, list[str]]:
    """Parse `text`; return (data, line map, problems). Raises yaml.YAMLError on bad syntax.

    Only plain YAML types are built: a `!!python/...` tag is an error, nothing is executed.
    """
    node = yaml.compose(text, Loader=_Loader)
    lines: LineMap = {}
    problems: list[str] = []
    if node is not None:
        _walk(node, (), lines, problems)
    if problems:
        return None, lines, problems
    data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    return data, lines, problems

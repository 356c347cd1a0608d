"""Safe YAML loading that refuses duplicate keys and remembers the line of every value.

The work is bounded before anything is built: aliases are refused (a few hundred bytes of
nested aliases expand to gigabytes, and one that refers to itself never ends), and so are
documents nested deeper or holding more nodes than any job file needs. An integer too long for
int() is refused as it is built, with its line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["LineMap", "load_yaml"]

MAX_DEPTH = 32  # a job file nests 4 levels; instances.yaml 3
MAX_NODES = 200_000  # scans.ids may list many thousands of ids
MAX_INT_CHARS = 100  # an integer's text, with its sign, underscores or 0x: far past any job's

# Path of keys/indexes from the document root -> 1-based line number.
LineMap = dict[tuple[str | int, ...], int]


class _PyLoader(yaml.SafeLoader):
    """SafeLoader without implicit timestamps: dates stay text, parsed where they are used."""


# The same with libyaml's parser (C), when PyYAML has it: a job listing thousands of scan ids
# parses in a few ms instead of tens of ms per pass, which a run's start-up feels. Constructor
# and resolver are the same (Python) classes, so the values built are the same.
_Loader: type[Any] = _PyLoader
if getattr(yaml, "__with_libyaml__", False):

    class _CLoader(yaml.CSafeLoader):
        """_PyLoader with libyaml's parser."""

    _Loader = _CLoader

_LOADERS: tuple[type[Any], ...] = (_PyLoader, _Loader)  # the same one twice without libyaml
for _loader in _LOADERS:
    _loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _construct_int(loader: Any, node: yaml.ScalarNode) -> Any:
    # int() refuses more than 4300 digits with ValueError, which is no YAMLError (and so was an
    # internal error); no number of a job needs more than 20 digits (2^63 has 19).
    text = str(node.value)
    if len(text) > MAX_INT_CHARS:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"a number written with {len(text)} characters, more than any job needs",
            node.start_mark,
        )
    return loader.construct_yaml_int(node)


for _loader in _LOADERS:
    _loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


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


def _bounds(text: str) -> list[str]:
    """One streaming pass over the parser's events: the first alias, or the first node past
    MAX_DEPTH or MAX_NODES, as a located problem (nothing is built yet). A document libyaml
    refuses (bad syntax, or nesting past its own limit) is parsed again by PyYAML's parser,
    which locates and words the problem the same whether libyaml is there or not."""
    try:
        return _bounds_with(text, _Loader)
    except yaml.YAMLError:
        if _Loader is _PyLoader:
            raise
        return _bounds_with(text, _PyLoader)


def _bounds_with(text: str, loader: type[Any]) -> list[str]:
    depth = nodes = 0
    for event in yaml.parse(text, Loader=loader):
        line = event.start_mark.line + 1 if event.start_mark else 0
        if isinstance(event, yaml.AliasEvent):
            return [
                f"line {line}: YAML aliases (*{event.anchor}) are not allowed in job files; "
                "write the value out where it is used"
            ]
        if isinstance(event, yaml.NodeEvent):
            nodes += 1
            if nodes > MAX_NODES:
                return [f"line {line}: more than {MAX_NODES:,} values; a job file needs far fewer"]
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                return [f"line {line}: nested deeper than {MAX_DEPTH} levels; a job file needs far fewer"]
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
    return []


def load_yaml(text: str, source: Path) -> tuple[Any, LineMap, list[str]]:
    """Parse `text`; return (data, line map, problems). Raises yaml.YAMLError on bad syntax.

    Only plain YAML types are built: a `!!python/...` tag is an error, nothing is executed.
    """
    problems = _bounds(text)
    if problems:
        return None, {}, problems
    loader = _Loader(text)  # a SafeLoader: only plain types are built
    try:
        node = loader.get_single_node()
        lines: LineMap = {}
        if node is not None:
            _walk(node, (), lines, problems)
        if problems or node is None:
            return None, lines, problems
        return loader.construct_document(node), lines, problems  # built from the same nodes
    finally:
        loader.dispose()

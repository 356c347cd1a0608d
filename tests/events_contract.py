"""The --json events contract as tests check it: each line against its event's JSON Schema."""

from __future__ import annotations

import json
from collections.abc import Iterable

import jsonschema

from scanjobs.events import event_schemas

VALIDATORS = {name: jsonschema.Draft202012Validator(schema) for name, schema in event_schemas().items()}


def contract_errors(line: str) -> list[str]:
    """What is wrong with one --json line (nothing when it keeps the contract)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return [f"not JSON ({exc})"]
    if not isinstance(record, dict):
        return ["not an object"]
    validator = VALIDATORS.get(str(record.get("event")))
    if validator is None:
        return [f"event {record.get('event')!r} is not in scanjobs.events.EVENTS"]
    return [
        f"{record['event']}: {'/'.join(map(str, e.absolute_path)) or '(line)'}: {e.message}"
        for e in validator.iter_errors(record)
    ]


def check_lines(lines: Iterable[str]) -> list[str]:
    """Every problem of these lines, each with the line it is about (shortened)."""
    problems = []
    for line in lines:
        if line.strip():
            problems += [f"{p}\n    in {line.strip()[:300]}" for p in contract_errors(line)]
    return problems

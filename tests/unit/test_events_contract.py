"""The --json events are one documented, versioned list (issue 15, point 7).

Every event of the whole suite's runs is checked against it when the session ends
(tests/conftest.py);
these tests check the list itself, the code that emits events, the README, and the events of
runs refused before they start.
"""

from __future__ import annotations

import ast
import io
import json
import re
from pathlib import Path

import pytest
from events_contract import check_lines

from scanjobs.cli import main
from scanjobs.events import EVENTS, EVENTS_VERSION, JsonSink, PlainSink

ROOT = Path(__file__).resolve().parents[2]


def emitted_in_code() -> list[tuple[str, str, set[str], bool]]:
    """Every events.emit("name", ...) in scanjobs: where, the name, its keywords, whether it
    also passes **fields."""
    found = []
    for path in sorted((ROOT / "scanjobs").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "emit"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                keywords = {k.arg for k in node.keywords if k.arg}
                spread = any(k.arg is None for k in node.keywords)
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                found.append((where, str(node.args[0].value), keywords, spread))
    return found


def test_every_event_the_code_emits_is_in_the_list_with_its_fields() -> None:
    emitted = emitted_in_code()
    assert len(emitted) > 30
    for where, name, keywords, spread in emitted:
        assert name in EVENTS, f"{where}: event {name!r} is not in scanjobs.events.EVENTS"
        fields = {key.rstrip("?") for key in EVENTS[name]}
        required = {key for key in EVENTS[name] if not key.endswith("?")}
        assert keywords <= fields, f"{where}: {name} has fields the list lacks: {keywords - fields}"
        if not spread:
            assert required <= keywords, f"{where}: {name} lacks {required - keywords}"


def test_the_readme_lists_the_same_events() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The --json events", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `(\w+)` \|", section, flags=re.M)
    assert sorted(listed) == sorted(EVENTS)
    assert f"version {EVENTS_VERSION}" in section


def test_a_line_keeps_the_contract_or_says_what_breaks_it() -> None:
    out = io.StringIO()  # a sink of its own (not an EventBus): these broken lines stay here
    sink = JsonSink(out)
    sink.handle("output", {"what": "scan mapping", "path": "out/scan_mapping.csv"})
    sink.handle("output", {"what": "scan mapping", "path": "x", "size": 3})
    sink.handle("output", {"what": "scan mapping"})
    sink.handle("sumary", {"text": "typo"})
    good, extra, missing, unknown = out.getvalue().splitlines()
    assert json.loads(good)["v"] == EVENTS_VERSION
    assert check_lines([good]) == []
    assert "'size' was unexpected" in check_lines([extra])[0]
    assert "'path' is a required property" in check_lines([missing])[0]
    assert "'sumary' is not in scanjobs.events.EVENTS" in check_lines([unknown])[0]


def test_an_invalid_job_is_one_job_invalid_event(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "bad.yaml"
    job.write_text("version: 1\nmode: copy\nsource: nowhere\nbatch: {size: 0}\n", encoding="utf-8")
    assert main(["run", str(job), "--json"]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert check_lines(lines) == []
    (event,) = (json.loads(line) for line in lines)
    assert event["event"] == "job_invalid" and event["exit_code"] == 2 and event["file"] == str(job)
    assert len(event["problems"]) >= 2 and all(isinstance(p, str) for p in event["problems"])


def test_a_refused_command_line_is_one_error_event(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "whatever.yaml", "--json", "--limit", "0"]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert check_lines(lines) == [] and len(lines) == 1
    assert json.loads(lines[0])["message"] == "--limit must be a positive number"


def test_plain_lines_of_the_renamed_events() -> None:
    out = io.StringIO()
    sink = PlainSink(out, verbosity=-1)  # -q: warnings and the summaries only
    sink.handle("run_started", {"job": "j", "mode": "copy", "file": "j.yaml"})
    sink.handle("selected", {"job": "j", "mode": "copy", "total": 3, "todo": 2, "already_done": 1})
    sink.handle("analysis_summary", {"text": "analysis: 3 No Issues", "comments": {}, "rows": 3})
    assert out.getvalue() == "analysis: 3 No Issues\n"
    out = io.StringIO()
    PlainSink(out).handle("selected", {"job": "j", "mode": "copy", "total": 3, "todo": 2, "already_done": 1})
    assert out.getvalue() == "copy job j: 3 scan(s), 1 already done, 2 to do\n"

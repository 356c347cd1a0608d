"""The --json events of real runs keep the documented contract: names, fields, order (issue 15, point 7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from copy_support import write_copy_job
from events_contract import check_lines

from scanjobs.cli import main
from scanjobs.events import EVENTS_VERSION
from scanjobs.sandbox import Sandbox
from scanjobs.state import RunLock, StatePaths

pytestmark = pytest.mark.integration

NOT_ON_SOURCE = 987_654_321


def events_of(out: str) -> list[dict[str, Any]]:
    lines = out.splitlines()
    assert check_lines(lines) == []
    return [json.loads(line) for line in lines]


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]


def test_a_copy_with_analysis_starts_with_run_started_and_ends_with_run_finished(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A scan id the source lacks makes a warning while scans are selected: it comes after
    run_started, as every event of the run does."""
    store, ids = sandbox.new_target_store(), sandbox.info["source_scan_ids"][:3]
    job = write_copy_job(
        tmp_path,
        sandbox,
        store=store,
        scan_ids=[*ids, NOT_ON_SOURCE],
        analysis={"enabled": True, "wait_for_processing": "1m"},
    )
    capsys.readouterr()
    assert main(["run", str(job), "--json", "--accept-permanent"]) == 0
    events = events_of(capsys.readouterr().out)
    seen = names(events)
    assert seen[0] == "run_started" and seen[-1] == "run_finished"
    assert seen.count("run_started") == seen.count("run_finished") == 1
    assert {e["v"] for e in events} == {EVENTS_VERSION}
    assert events[0]["mode"] == "copy" and events[0]["file"] == str(job)
    assert any(e["event"] == "warning" and str(NOT_ON_SOURCE) in e["message"] for e in events)
    selected = next(e for e in events if e["event"] == "selected")
    assert (selected["total"], selected["todo"], selected["final"]) == (4, 3, 0)
    assert seen.index("selected") < seen.index("item")
    # the copy's summary and the analysis's are two events, each once
    assert seen.count("summary") == seen.count("analysis_summary") == 1
    analysis = next(e for e in events if e["event"] == "analysis_summary")
    assert analysis["rows"] >= 3 and sum(analysis["comments"].values()) == analysis["rows"]
    assert events[-1]["exit_code"] == 0 and events[-1]["done"] == 3


def test_a_refused_run_says_why_in_the_stream(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, ids = sandbox.new_target_store(), sandbox.info["source_scan_ids"][3:4]
    job = write_copy_job(tmp_path, sandbox, store=store, scan_ids=ids)
    assert main(["run", str(job), "-q"]) == 0
    capsys.readouterr()

    # another run holds the lock: one `error`, no run
    with RunLock(StatePaths.for_job(job).lock):
        assert main(["run", str(job), "--json"]) == 4
    events = events_of(capsys.readouterr().out)
    assert names(events) == ["error"]
    assert events[0]["exit_code"] == 4 and "another run of this job is going" in events[0]["message"]

    # the job changed since its work was done: the run starts, is refused, and ends
    data = yaml.safe_load(job.read_text(encoding="utf-8"))
    data["copy"]["strategy"] = "mapped"
    job.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    assert main(["run", str(job), "--json"]) == 4
    events = events_of(capsys.readouterr().out)
    assert names(events) == ["run_started", "error", "run_finished"]
    assert events[1]["exit_code"] == events[2]["exit_code"] == 4

    # status --json: each run's summary is an object, not JSON in a string
    assert main(["status", str(job), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert runs[0]["summary"]["done"] == 1 and runs[0]["exit_code"] == 0

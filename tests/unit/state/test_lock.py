"""The run lock tells a live run from a killed one (issue 12, point 16)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from scanjobs.cli import main
from scanjobs.errors import LockedError
from scanjobs.state import RunLock, StatePaths, StateStore

JOB = "version: 1\nmode: download\nsource: a\nscans: {ids: [1]}\ninstances: {a: {}}\n"
KILLED = {"pid": 2**22 + 7, "host": "gone", "started": "2026-12-01 00:00:00"}


def test_a_killed_runs_details_are_not_a_running_run(tmp_path: Path) -> None:
    lock = tmp_path / "job.state.lock"
    lock.write_text(json.dumps(KILLED))  # what SIGKILL leaves: details, no flock
    assert RunLock(lock).holder() == KILLED
    assert RunLock(lock).running() is None
    with RunLock(lock) as held:  # and a new run takes it over
        assert held.took_over == KILLED
        live = RunLock(lock).running()
        assert live is not None and live["pid"] == os.getpid()
        with pytest.raises(LockedError):
            RunLock(lock).acquire()
    assert RunLock(lock).running() is None
    assert RunLock(tmp_path / "none.lock").running() is None


def test_status_does_not_show_a_killed_run_as_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(JOB)
    paths = StatePaths.for_job(job)
    StateStore.open(paths.db, fingerprint="f").close()
    paths.lock.write_text(json.dumps(KILLED))
    assert main(["status", str(job), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["running"] is None
    assert main(["status", str(job)]) == 0
    assert "running now" not in capsys.readouterr().out

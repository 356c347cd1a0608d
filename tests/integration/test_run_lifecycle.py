"""A job's life across runs: secrets never leak, a changed job is refused, locks, internal errors."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import yaml
from copy_support import output_dir, write_copy_job

from scanjobs.cli import main
from scanjobs.sandbox import Sandbox


def secrets_of(sb: Sandbox) -> list[str]:
    out = []
    for inst in sb.info["instances"].values():
        out += [inst["password"], inst["db"]["password"]]
    return out


def scans_in_store(sb: Sandbox, store: int) -> int:
    with psycopg.connect(**sb.db("target")) as conn:
        row = conn.execute(
            "SELECT count(*) FROM realograms_implementation_scan WHERE store_id = %s", (store,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_secrets_never_reach_output_state_logs_or_reports(sandbox: Sandbox, tmp_path: Path) -> None:
    store = sandbox.new_target_store()
    job = write_copy_job(
        tmp_path,
        sandbox,
        store=store,
        scan_ids=sandbox.info["source_scan_ids"][:4],
        analysis={"enabled": True, "wait_for_processing": "1m"},
    )
    env = {**os.environ}
    run = subprocess.run(
        [sys.executable, "-m", "scanjobs", "-v", "run", str(job), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    status = subprocess.run(
        [sys.executable, "-m", "scanjobs", "status", str(job), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    plan = subprocess.run(
        [sys.executable, "-m", "scanjobs", "plan", str(job), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    texts = [run.stdout, run.stderr, status.stdout, plan.stdout]
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != ".env"]
    assert any(p.suffix == ".xlsx" for p in files) and any(".state.sqlite" in p.name for p in files)
    for secret in secrets_of(sandbox):
        for text in texts:
            assert secret not in text
        for path in files:
            assert secret.encode() not in path.read_bytes(), path


def test_changed_target_is_refused_then_restart_starts_over(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = sandbox.info["source_scan_ids"][4:7]
    first, second = sandbox.new_target_store(), sandbox.new_target_store()
    job = write_copy_job(tmp_path, sandbox, store=first, scan_ids=ids)
    assert main(["run", str(job)]) == 0
    data = yaml.safe_load(job.read_text())
    data["target"]["store"] = second
    job.write_text(yaml.safe_dump(data, sort_keys=False))
    state_before = job.with_name("copy.state.sqlite").read_bytes()
    capsys.readouterr()
    assert main(["run", str(job)]) == 4
    err = capsys.readouterr().err
    assert "the job changed" in err and "target" in err and "--restart" in err
    assert job.with_name("copy.state.sqlite").read_bytes() == state_before
    assert scans_in_store(sandbox, second) == 0
    assert main(["run", str(job), "--restart"]) == 0
    assert scans_in_store(sandbox, second) == 3 and scans_in_store(sandbox, first) == 3
    assert list(tmp_path.glob("copy.state.sqlite.bak-*"))  # the old state is kept aside
    mapping = (output_dir(job) / "scan_mapping.csv").read_text().splitlines()
    assert len(mapping) == 4


def test_dead_pid_lock_is_taken_over(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = write_copy_job(
        tmp_path, sandbox, store=sandbox.new_target_store(), scan_ids=sandbox.info["source_scan_ids"][7:8]
    )
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    job.with_name("copy.state.lock").write_text(
        json.dumps({"pid": int(dead.stdout), "host": os.uname().nodename, "started": "earlier"})
    )
    assert main(["run", str(job)]) == 0
    assert "took over the lock" in capsys.readouterr().out


def test_internal_error_writes_traceback_beside_the_state(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    job = write_copy_job(
        tmp_path, sandbox, store=sandbox.new_target_store(), scan_ids=sandbox.info["source_scan_ids"][8:9]
    )

    def broken(*_args: object) -> None:
        raise RuntimeError("a bug for the test")

    monkeypatch.setattr("scanjobs.modes.copy.CopyRun.run", broken)
    assert main(["run", str(job)]) == 3
    err = capsys.readouterr().err
    log = job.with_name("copy.state.log")
    assert f"the traceback is in {log}" in err
    assert "RuntimeError: a bug for the test" in log.read_text()


def test_a_failed_run_records_the_exit_code_the_process_exits_with(sandbox: Sandbox, tmp_path: Path) -> None:
    """A refused job (here: a target store that does not exist, exit 2) is recorded with its own
    code in the state's runs, in `status` and in the --json `run_finished` event, not as internal."""
    job = write_copy_job(tmp_path, sandbox, store=999_999, scan_ids=sandbox.info["source_scan_ids"][:1])
    run = subprocess.run(
        [sys.executable, "-m", "scanjobs", "run", str(job), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr
    finished = [json.loads(line) for line in run.stdout.splitlines() if '"run_finished"' in line]
    assert [(e["exit_code"], e["status"]) for e in finished] == [(2, "invalid")]
    status = subprocess.run(
        [sys.executable, "-m", "scanjobs", "status", str(job), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert '"exit_code": 3' not in status.stdout and "internal" not in status.stdout, status.stdout
    with sqlite3.connect(job.with_name(job.stem + ".state.sqlite")) as conn:
        assert conn.execute("SELECT exit_code FROM runs").fetchall() == [(2,)]

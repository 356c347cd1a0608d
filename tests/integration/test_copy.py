"""Copy mode against the sandbox (issue 4 acceptance): outcomes checked with our own SQL."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from copy_support import (
    assert_bytes_identical,
    assert_copied,
    expected_hints,
    output_of,
    query,
    read_failures,
    read_mapping,
    scans_in_store,
    source_raw,
    spawn,
    uploads_in_store,
    wait_until,
    write_copy_job,
)

from scanjobs.cli import main
from scanjobs.jobfile.env import env_var_for
from scanjobs.sandbox import Sandbox

pytestmark = pytest.mark.integration


def posts(stats: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in stats["requests"] if r["method"] == "POST"]


def count(stats: dict[str, Any], method: str, route: str) -> int:
    return sum(r["count"] for r in stats["requests"] if r["method"] == method and r["route"] == route)


@pytest.fixture
def restore_config(sandbox: Sandbox) -> Iterator[Sandbox]:
    """For tests that change latency or faults of the shared sandbox."""
    try:
        yield sandbox
    finally:
        sandbox.configure(fault_rate=0, latency_ms=0, hang_seconds=15)


def test_auto_copy_is_complete_and_a_rerun_sends_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    store, ids = sandbox.new_target_store(), sandbox.info["source_scan_ids"][:30]
    job = write_copy_job(tmp_path, sandbox, store=store, scan_ids=ids, strategy="auto")
    started = time.time()
    assert main(["run", str(job)]) == 0
    mapping = assert_copied(sandbox, job, store, ids, captured_between=(started, time.time()))
    assert uploads_in_store(sandbox, store) == 90, "every file uploaded once"
    assert read_failures(job) == {}
    assert_bytes_identical(sandbox, dict(list(mapping.items())[:2]))

    sandbox.reset_stats()
    assert main(["run", str(job)]) == 0
    for instance in ("source", "target"):
        assert posts(sandbox.stats(instance)) == [], f"a finished job sent a POST to {instance}"
    assert len(scans_in_store(sandbox, store)) == 30
    assert read_mapping(job) == mapping


def test_mapped_copy_translates_hints_by_name(sandbox: Sandbox, tmp_path: Path) -> None:
    store, ids = sandbox.new_target_store(), sandbox.info["source_scan_ids"][10:40]
    job = write_copy_job(
        tmp_path,
        sandbox,
        store=store,
        scan_ids=ids,
        strategy="mapped",
        copy={"strategy": "mapped", "captured_at": "source"},
    )
    assert main(["run", str(job)]) == 0
    mapping = assert_copied(sandbox, job, store, ids, strategy="mapped")
    raws = source_raw(sandbox, ids)
    targets = scans_in_store(sandbox, store)
    for source_id, target_id in mapping.items():
        assert targets[target_id]["captured_at"] == raws[source_id]["captured_at"]
    # the ids really changed: the target has the same names under other ids
    assert all(targets[t]["section_id"] != raws[s]["section_id"] for s, t in mapping.items())


def test_transient_faults_fail_only_uploads_that_may_be_stored(
    restore_config: Sandbox, tmp_path: Path
) -> None:
    """Every transient fault is retried, except after an upload went out whole (a reset or a 502
    then): the platform may have stored it, so its scan fails and the rerun settles it (issue 12,
    point 5). Each file ends up uploaded once."""
    sandbox = restore_config
    store, ids = sandbox.new_target_store(), sandbox.info["source_scan_ids"][:20]
    job = write_copy_job(
        tmp_path,
        sandbox,
        store=store,
        scan_ids=ids,
        retry={"attempts": 8, "backoff": {"initial": 0.05, "max": 1}, "timeout": {"connect": 5, "read": 1}},
    )
    sandbox.configure(fault_rate=0.05, hang_seconds=2)  # a hang outlives the read timeout
    sandbox.reset_stats()
    first = main(["run", str(job)])
    faults = sandbox.stats("source")["faults_injected"] + sandbox.stats("target")["faults_injected"]
    assert faults > 0
    sandbox.configure(fault_rate=0)
    unsettled = read_failures(job)
    assert first == (1 if unsettled else 0)
    assert all(f["step"] == "upload" and "not resent" in f["error"] for f in unsettled.values()), unsettled
    assert main(["run", str(job)]) == 0  # the rerun settles them: found on the target, or sent again
    assert read_failures(job) == {}
    assert_copied(sandbox, job, store, ids)
    assert uploads_in_store(sandbox, store) == 60


def test_scans_without_files_and_unknown_ids_fail_alone(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = sandbox.new_target_store()
    good = sandbox.info["source_scan_ids"][:2]
    empty, unknown = sandbox.info["empty_scan_ids"][0], 999_999
    job = write_copy_job(tmp_path, sandbox, store=store, scan_ids=[*good, empty, unknown])
    assert main(["run", str(job)]) == 1
    out = capsys.readouterr().out
    assert "999999" in out and "not found" in out
    failures = read_failures(job)
    assert set(failures) == {empty, unknown}
    assert failures[empty]["error_class"] == "NoFiles" and "has no files" in failures[empty]["error"]
    assert failures[unknown]["error_class"] == "NotFoundOnSource"
    assert "does not exist" in failures[unknown]["error"]
    assert sorted(read_mapping(job)) == sorted(good)
    assert len(scans_in_store(sandbox, store)) == 2 and uploads_in_store(sandbox, store) == 6

    # Issue 12, point 20: permanent failures are final. A plain rerun does not try them again
    # (still exit 1: they are failures), --retry-failed does, and --accept-permanent lets CI
    # pass a job whose only failures are permanent ones.
    def attempts() -> int:
        with sqlite3.connect(job.with_name("copy.state.sqlite")) as conn:
            return int(conn.execute("SELECT attempts FROM items WHERE key = ?", (str(empty),)).fetchone()[0])

    assert attempts() == 1
    assert main(["run", str(job)]) == 1
    out = capsys.readouterr().out
    assert attempts() == 1, "a plain rerun retried a permanent failure"
    assert "2 permanent" in out and "--retry-failed" in out, out
    assert main(["run", str(job), "--retry-failed"]) == 1
    assert attempts() == 2
    assert main(["run", str(job), "--accept-permanent"]) == 0
    assert "accepted" in capsys.readouterr().out
    assert set(read_failures(job)) == {empty, unknown}, "accepted failures are still reported"


def test_missing_target_store_touches_nothing(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = write_copy_job(tmp_path, sandbox, store=987_654, scan_ids=sandbox.info["source_scan_ids"][:3])
    sandbox.reset_stats()
    assert main(["run", str(job)]) == 2
    assert "target store 987654 does not exist" in capsys.readouterr().err
    # No login, so no API call at all (each needs the token; storage URLs come from the API).
    # Counted by method: a GET hung by an earlier fault test may still finish and be counted.
    for instance in ("source", "target"):
        requests = sandbox.stats(instance)["requests"]
        assert not [r for r in requests if r["method"] == "POST"], requests


def test_limit_takes_at_most_n_new_scans(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, ids = sandbox.new_target_store(), sandbox.info["source_scan_ids"][:5]
    job = write_copy_job(tmp_path, sandbox, store=store, scan_ids=ids)
    assert main(["run", str(job), "--limit", "2"]) == 0
    assert "3 new scan(s) left for the next run" in capsys.readouterr().out
    assert len(scans_in_store(sandbox, store)) == 2 and sorted(read_mapping(job)) == ids[:2]
    assert main(["run", str(job), "--limit", "2"]) == 0
    assert len(scans_in_store(sandbox, store)) == 4
    assert main(["run", str(job)]) == 0
    assert_copied(sandbox, job, store, ids)


def test_plan_is_a_read_only_preflight(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    store = sandbox.new_target_store()
    ids = [*sandbox.info["source_scan_ids"][:4], sandbox.info["empty_scan_ids"][0]]
    job = write_copy_job(tmp_path, sandbox, store=store, scan_ids=ids)
    sandbox.reset_stats()
    assert main(["plan", str(job), "--json"]) == 1  # as run: the scan without files would fail
    plan = json.loads(capsys.readouterr().out)
    assert plan["facts"]["selected"] == 5 and plan["facts"]["files"] == 12
    assert plan["verdict"].endswith("(exit 1: some items would fail)"), plan["verdict"]
    assert plan["facts"]["scans_without_files"] == [ids[-1]] and plan["facts"]["todo"] == 5
    # 12 files in 5 scans, workers 20/20/10: 4 x 20 / (2 x 2.4) = 16.7 scans must be in flight
    assert any(
        "batch.size 10 keeps fewer scans in flight than the workers can serve" in line
        and "17 keep them busy" in line
        for line in plan["lines"]
    ), plan["lines"]
    for instance in ("source", "target"):
        assert {r["route"] for r in posts(sandbox.stats(instance))} <= {"/api/v4/token-auth/"}
    assert not (tmp_path / "copy.state.sqlite").exists()
    assert scans_in_store(sandbox, store) == {}
    bad = write_copy_job(tmp_path, sandbox, store=987_654, scan_ids=ids, name="bad")
    assert main(["plan", str(bad)]) == 2
    assert "target store 987654 does not exist" in capsys.readouterr().out


@pytest.mark.parametrize("secret", ["PASSWORD", "DB_PASSWORD"])
def test_wrong_password_exits_5_without_retry_storm(
    sandbox: Sandbox,
    tmp_path: Path,
    secret: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = sandbox.new_target_store()
    job = write_copy_job(tmp_path, sandbox, store=store, scan_ids=sandbox.info["source_scan_ids"][:3])
    monkeypatch.setenv(env_var_for("sandbox-target", secret), "not-the-password")
    sandbox.reset_stats()
    assert main(["run", str(job)]) == 5
    err = capsys.readouterr().err
    assert "not-the-password" not in err
    assert ("refused" if secret == "PASSWORD" else "authentication") in err.lower(), err
    target = sandbox.stats("target")
    assert count(target, "POST", "/api/v4/token-auth/") <= 1, "one refusal is final"
    assert count(target, "POST", "/api/v4/processing/upload/") == 0
    assert sandbox.stats("source")["requests_total"] <= 1, sandbox.stats("source")  # at most its login
    assert scans_in_store(sandbox, store) == {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _instance(
    sb: Sandbox,
    api_of: tuple[Sandbox, str],
    db_of: tuple[Sandbox, str],
    env: dict[str, str],
    label: str,
    **db_override: Any,
) -> dict[str, Any]:
    """A job-file instance whose API and database may belong to different sandbox instances."""
    api_sb, api_role = api_of
    db_sb, db_role = db_of
    api, db = api_sb.info["instances"][api_role], db_sb.info["instances"][db_role]
    env[f"COPYTEST_{label}_PASSWORD"] = api["password"]
    env[f"COPYTEST_{label}_DB_PASSWORD"] = db["db"]["password"]
    return {
        "api_url": api["api_url"],
        "username": api["username"],
        "password": f"${{COPYTEST_{label}_PASSWORD}}",
        "db": {
            "host": db["db"]["host"],
            "port": int(db["db"]["port"]),
            "dbname": db["db"]["dbname"],
            "user": db["db"]["user"],
            "password": f"${{COPYTEST_{label}_DB_PASSWORD}}",
            **db_override,
        },
    }


def test_unreachable_database_exits_5(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env: dict[str, str] = {}
    port = _free_port()
    dead = _instance(sandbox, (sandbox, "target"), (sandbox, "target"), env, "DEAD", port=port)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    job = write_copy_job(
        tmp_path,
        sandbox,
        store=sandbox.info["target_store_id"],
        scan_ids=sandbox.info["source_scan_ids"][:2],
        target={"instance": "dead-target", "store": sandbox.info["target_store_id"]},
        instances={"dead-target": dead},
    )
    assert main(["run", str(job)]) == 5
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err or str(port) in err, err


def test_create_400_fails_only_that_scan(
    sandbox: Sandbox, sandbox_factory: Callable[..., Sandbox], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An honest 400 from create: the target's API and database are different instances.

    The sandbox's create validates that store, files and hint ids exist. scanjobs checks the
    store and translates hints on the target *database*; pointing that at another sandbox
    (same names, another seed, so some section ids don't exist behind the API) makes the
    platform refuse exactly the scans whose translated ids it does not know.
    """
    other = sandbox_factory(scans=1, files_per_scan=1, seed=12, processing_delay=0.5)
    store = sandbox.info["target_store_id"]
    assert other.info["target_store_id"] == store
    raws = source_raw(sandbox, sandbox.info["source_scan_ids"])

    def accepted(scan_id: int) -> bool:
        hints = expected_hints(sandbox, raws[scan_id], store)
        for key, table in (
            ("store_planogram", "planograms_implementation_planogramstore"),
            ("section_id", "planograms_implementation_planogramsection"),
            ("category_id", "master_data_implementation_category"),
        ):
            if not query(other, "target", f"SELECT 1 FROM {table} WHERE id = %s", hints[key]):
                return False
        return True

    verdict = {s: accepted(s) for s in sandbox.info["source_scan_ids"]}
    refused = [s for s, ok in verdict.items() if not ok][:1]
    fine = [s for s, ok in verdict.items() if ok][:4]
    assert refused and len(fine) == 4, "seed 12 no longer yields a refusable scan: pick another seed"
    env: dict[str, str] = {}
    split = _instance(sandbox, (other, "target"), (sandbox, "target"), env, "SPLIT")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    ids = [*fine[:2], *refused, *fine[2:]]
    job = write_copy_job(
        tmp_path,
        sandbox,
        store=store,
        scan_ids=ids,
        strategy="mapped",
        target={"instance": "split-target", "store": store},
        instances={"split-target": split},
    )
    before = set(scans_in_store(other, store))
    other.reset_stats()
    assert main(["run", str(job)]) == 1
    failures = read_failures(job)
    assert list(failures) == refused
    row = failures[refused[0]]
    assert row["step"] == "create" and row["error_class"] == "PermanentError"
    assert "400" in row["error"] and "Invalid pk" in row["error"], row
    assert sorted(read_mapping(job)) == sorted(fine)
    assert len(set(scans_in_store(other, store)) - before) == 4
    refusals = [
        r
        for r in other.stats("target")["requests"]
        if r["route"] == "/api/v4/processing/actions/" and r["status"] == 400
    ]
    assert sum(r["count"] for r in refusals) == 1, "a 400 is permanent: sent once"
    other.reset_stats()
    assert main(["run", str(job)]) == 1  # issue 12, point 20: final, not sent again
    assert count(other.stats("target"), "POST", "/api/v4/processing/actions/") == 0
    assert main(["run", str(job), "--retry-failed"]) == 1  # asked for: sent once more
    assert count(other.stats("target"), "POST", "/api/v4/processing/actions/") == 1


def test_failure_threshold_stops_the_run(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A source whose API is another instance: every file is a 404, so every scan fails."""
    env: dict[str, str] = {}
    split = _instance(sandbox, (sandbox, "target"), (sandbox, "source"), env, "WRONGAPI")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    store, ids = sandbox.new_target_store(), sandbox.info["source_scan_ids"][:30]
    job = write_copy_job(
        tmp_path,
        sandbox,
        store=store,
        scan_ids=ids,
        source="wrongapi-source",
        instances={"wrongapi-source": split},
        batch={"size": 4, "max_failed_ratio": 0.5},
    )
    assert main(["run", str(job)]) == 1
    assert "stopped early" in capsys.readouterr().out
    failures = read_failures(job)
    assert 4 <= len(failures) < 30, "stopped after the window, not at the end"
    assert all(f["step"] == "download" and "404" in f["error"] for f in failures.values())
    with sqlite3.connect(tmp_path / "copy.state.sqlite") as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM items WHERE kind='scan' GROUP BY status"))
    assert statuses.get("pending", 0) == 30 - len(failures) and "running" not in statuses
    assert scans_in_store(sandbox, store) == {}


def test_sigint_finishes_in_flight_scans_then_rerun_completes(
    restore_config: Sandbox, tmp_path: Path
) -> None:
    sandbox = restore_config
    store, ids = sandbox.new_target_store(), sandbox.info["source_scan_ids"][:16]
    job = write_copy_job(tmp_path, sandbox, store=store, scan_ids=ids, batch={"size": 4})
    sandbox.configure(latency_ms=60)
    proc = spawn(job)
    try:
        wait_until(
            lambda: len(scans_in_store(sandbox, store)) >= 2 or proc.poll() is not None,
            60,
            "two scans copied",
        )
        assert proc.poll() is None, output_of(job)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130, output_of(job)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # in-flight scans finished and were recorded: every target scan is in the mapping
    mapping = read_mapping(job)
    assert sorted(mapping.values()) == sorted(scans_in_store(sandbox, store))
    assert len(mapping) < len(ids), "the interrupt came too late to test anything"
    with sqlite3.connect(tmp_path / "copy.state.sqlite") as conn:
        running = conn.execute("SELECT count(*) FROM items WHERE status='running'").fetchone()[0]
    assert running == 0, "interrupted scans are left resumable, not half-recorded"
    sandbox.configure(latency_ms=0)
    assert main(["run", str(job)]) == 0
    assert_copied(sandbox, job, store, ids)
    assert uploads_in_store(sandbox, store) == 48


def test_removed_scan_ids_leave_the_reports_and_status_and_come_back_without_duplicates(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 12, point 19: scans removed from a job stayed in its reports and its status."""
    import json

    import yaml

    store = sandbox.new_target_store()
    ids = sandbox.info["source_scan_ids"][:3]
    unknown = 999_998
    job = write_copy_job(tmp_path, sandbox, store=store, scan_ids=[*ids, unknown])
    assert main(["run", str(job)]) == 1
    assert set(read_failures(job)) == {unknown}

    def select(scan_ids: list[int]) -> None:
        spec = yaml.safe_load(job.read_text())
        spec["scans"] = {"ids": scan_ids}
        job.write_text(yaml.safe_dump(spec, sort_keys=False))

    select(ids[:2])  # one copied scan and the unknown id removed
    assert main(["run", str(job)]) == 0
    assert sorted(read_mapping(job)) == sorted(ids[:2])
    assert read_failures(job) == {}
    capsys.readouterr()
    assert main(["status", str(job), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["counts"]["scan"] == {"done": 2}, status["counts"]
    assert status["failures"] == []
    assert status["not_selected"] == {"scan": 2}
    select(ids)  # back again: the record of its copy is kept, so it is not copied twice
    assert main(["run", str(job)]) == 0
    assert sorted(read_mapping(job)) == sorted(ids)
    assert len(scans_in_store(sandbox, store)) == 3


def test_plan_reaches_the_verdict_run_would(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 12, point 17: plan said "a run would copy ..." for a job whose change run refuses
    (exit 4), and after a FAIL line. It ends with one verdict line, and exits as run would."""
    import yaml

    store = sandbox.new_target_store()
    ids = sandbox.info["source_scan_ids"][:2]
    job = write_copy_job(tmp_path, sandbox, store=store, scan_ids=ids)
    assert main(["plan", str(job)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("verdict: a run would copy 2 scan(s)"), lines
    assert main(["run", str(job)]) == 0
    capsys.readouterr()

    spec = yaml.safe_load(job.read_text())
    spec["target"]["store"] = sandbox.new_target_store()  # the done work belongs to the old store
    job.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert main(["plan", str(job)]) == 4
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert not [line for line in lines if "a run would copy" in line], out
    assert [line for line in lines if line.startswith("verdict:")] == [lines[-1]], out
    assert "job changed" in lines[-1] and "exit 4" in lines[-1], out
    assert main(["run", str(job)]) == 4  # the same verdict

    spec["target"]["store"] = 987_654  # and a store that does not exist: exit 2, not "would copy"
    job.write_text(yaml.safe_dump(spec, sort_keys=False))
    (tmp_path / "copy.state.sqlite").rename(tmp_path / "aside.sqlite")
    assert main(["plan", str(job)]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("verdict: a run would stop") and "987654" in lines[-1], lines
    assert main(["run", str(job)]) == 2


def test_the_default_batch_keeps_the_workers_busy(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 14, point 1: without batch.size, plan and run keep twice the Little's-law figure in
    flight (3 files a scan, workers 20/20/10: 14 keep them busy, 28 absorb uneven latencies)."""
    store = sandbox.new_target_store()
    ids = sandbox.info["source_scan_ids"][:6]
    job = write_copy_job(
        tmp_path,
        sandbox,
        store=store,
        scan_ids=ids,
        batch={"workers": {"download": 20, "upload": 20, "create": 10}},
    )
    assert main(["plan", str(job)]) == 0
    assert "28 scans in flight (batch.size by default" in capsys.readouterr().out
    assert main(["run", str(job), "--json"]) == 0
    batches = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"batch"' in line]
    assert [b["finished"] for b in batches if b.get("event") == "batch"] == [6]  # one batch of up to 28
    assert_copied(sandbox, job, store, ids)

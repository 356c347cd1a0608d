"""The state store: transitions, lock, fingerprint, and refusing state it cannot trust."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scanjobs.cli import main
from scanjobs.errors import LockedError, StateError
from scanjobs.state import FORMAT_VERSION, ItemKind, RunLock, StateStore, Status


def test_items_transitions_and_counts(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "j.state.sqlite", fingerprint="f1")
    assert store.add_items("scan", [("10", 10), ("11", 11)]) == 2
    assert store.add_items("scan", [("11", 11), ("12", 12)]) == 1  # adding scans adds work only
    store.record_intent(ItemKind.SCAN, "10", "create", request_uid="u-1", attempt=True)
    store.mark_done(ItemKind.SCAN, "10", "create", target_id=99, data={"files": [1, 2]})
    store.mark_failed(ItemKind.SCAN, "11", "upload", ValueError("400 Bad Request: store: bad\nmore"))
    rec = store.get("scan", "10")
    assert rec is not None and rec.target_id == 99 and rec.request_uid == "u-1" and rec.attempts == 1
    assert rec.data == {"files": [1, 2]}
    failed = store.get("scan", "11")
    assert failed is not None and failed.error_class == "ValueError"
    assert failed.error_message == "400 Bad Request: store: bad"
    assert [r.key for r in store.items("scan")] == ["10", "11", "12"]
    assert store.counts().by_status(ItemKind.SCAN) == {Status.DONE: 1, Status.FAILED: 1, Status.PENDING: 1}
    store.close()


def test_changed_fingerprint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.state.sqlite"
    StateStore.open(path, fingerprint="f1").close()
    StateStore.open(path, fingerprint="f1").close()
    with pytest.raises(StateError, match="--restart"):
        StateStore.open(path, fingerprint="f2")


@pytest.mark.parametrize(
    "content", [b"garbage" * 100, b"", "truncate"], ids=["garbage", "empty", "truncated"]
)
def test_unusable_state_is_refused_and_left_byte_identical(tmp_path: Path, content: bytes | str) -> None:
    path = tmp_path / "j.state.sqlite"
    if content == "truncate":
        store = StateStore.open(path, fingerprint="f")
        store.add_items("scan", [(str(i), i) for i in range(2000)])
        store.close()
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2 + 100])
    else:
        assert isinstance(content, bytes)
        path.write_bytes(content)
    before = path.read_bytes()
    with pytest.raises(StateError):
        StateStore.open(path, fingerprint="f")
    assert path.read_bytes() == before
    assert not path.with_name(path.name + "-wal").exists() or content == "truncate"


def test_newer_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.state.sqlite"
    store = StateStore.open(path, fingerprint="f")
    store.set_meta("format_version", str(FORMAT_VERSION + 1))
    store.close()
    before = path.read_bytes()
    with pytest.raises(StateError, match="newer scanjobs"):
        StateStore.open(path, fingerprint="f")
    assert path.read_bytes() == before


def test_lock_refuses_second_holder_and_takes_over_dead_pid(tmp_path: Path) -> None:
    lock_path = tmp_path / "j.state.lock"
    with RunLock(lock_path), pytest.raises(LockedError, match=f"pid {os.getpid()}"):
        RunLock(lock_path).acquire()
    # a lock file left by a process that died (SIGKILL): its pid is gone, the flock with it
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    lock_path.write_text(
        json.dumps({"pid": int(dead.stdout), "host": os.uname().nodename, "started": "earlier"})
    )
    lock = RunLock(lock_path)
    lock.acquire()
    assert lock.took_over and lock.took_over["pid"] == int(dead.stdout)
    lock.release()


def test_second_run_of_same_job_is_refused_without_waiting(tmp_path: Path) -> None:
    """The refusal does not wait for the lock: the child's timeout guards against a wait (a
    timed assertion here failed on a loaded machine, where the interpreter's start took 5 s)."""
    job = tmp_path / "job.yaml"
    job.write_text(
        textwrap.dedent("""\
        version: 1
        mode: download
        source: a
        scans: {ids: [1]}
        instances:
          a: {api_url: "http://127.0.0.1:9", db: {host: 127.0.0.1, port: 9}}
        """)
    )
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from scanjobs.state import RunLock
            with RunLock(Path({str(tmp_path / "job.state.lock")!r})):
                print("locked", flush=True)
                time.sleep(60)
            """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = subprocess.run(
            [sys.executable, "-m", "scanjobs", "run", str(job)], capture_output=True, text=True, timeout=45
        )
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 4, result.stderr
    assert "another run of this job" in result.stderr


def test_status_and_reset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("version: 1\nmode: download\nsource: a\nscans: {ids: [1]}\ninstances: {a: {}}\n")
    assert main(["status", str(job)]) == 0
    assert "not started" in capsys.readouterr().out
    store = StateStore.open(tmp_path / "job.state.sqlite", fingerprint="f")
    store.add_items("image", [("1:5", 1)])
    store.mark_failed(ItemKind.IMAGE, "1:5", "download", RuntimeError("404 Not Found"))
    store.close()
    assert main(["status", str(job), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["image"] == {"failed": 1}
    assert report["failures"][0]["error"] == "404 Not Found"
    (tmp_path / "results").mkdir()
    keep = tmp_path / "results" / "keep.csv"
    keep.write_text("x")
    assert main(["reset", str(job)]) == 2  # no --yes, no terminal
    assert main(["reset", str(job), "--yes"]) == 0
    assert not (tmp_path / "job.state.sqlite").exists() and keep.exists() and job.exists()


def test_outcomes_are_the_selected_items_in_selection_order(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "s.sqlite", fingerprint="fp")
    store.add_items(ItemKind.SCAN, [("30", 30), ("10", 10), ("20", 20)])
    store.add_items(ItemKind.FILE, [("7", 7)])
    store.mark_done(ItemKind.SCAN, "30", "create", target_id=300, data={"target_files": [1]})
    store.mark_failed(ItemKind.SCAN, "20", "create", RuntimeError("boom"))
    store.select_only([ItemKind.SCAN], [30, 20])
    assert store.outcomes(ItemKind.SCAN) == [(30, 300, Status.DONE), (20, None, Status.FAILED)]
    assert [
        (r.source_id, r.target_id, r.status) for r in store.items(ItemKind.SCAN, selected_only=True)
    ] == store.outcomes(ItemKind.SCAN)
    store.add_items(ItemKind.SCAN, [("40", None)])  # an item without a source id: its key
    assert store.outcomes(ItemKind.SCAN)[-1] == (40, None, Status.PENDING)
    store.close()


def test_counts_by_selection_are_the_two_counts(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "s.sqlite", fingerprint="f")
    store.add_items("scan", [(str(i), i) for i in range(1, 8)])
    store.select_only([ItemKind.SCAN], [1, 2, 3])
    both = store.counts_by_selection()
    assert both == (store.counts(), store.counts(selected=False))
    assert both[0].total(ItemKind.SCAN) == 3 and both[1].total(ItemKind.SCAN) == 4
    store.close()

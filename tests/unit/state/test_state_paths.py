"""StatePaths: the names of a state's files, its backups, moving it aside and deleting it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from scanjobs.errors import LockedError
from scanjobs.jobfile import load_job
from scanjobs.state import RunLock, StatePaths, StateStore, state_files


def make_state(path: Path, keys: list[str]) -> None:
    store = StateStore.open(path, fingerprint="f")
    store.add_items("scan", [(k, int(k)) for k in keys])
    store.close()


def keys_in(path: Path) -> list[str]:
    store = StateStore.open(path, create=False)
    try:
        return [r.key for r in store.items("scan")]
    finally:
        store.close()


def test_names_match_the_job_and_the_old_state_files(tmp_path: Path) -> None:
    job_file = tmp_path / "copy.yaml"
    job_file.write_text("version: 1\nmode: download\nsource: a\nscans: {ids: [1]}\ninstances: {a: {}}\n")
    job = load_job(job_file)
    paths = StatePaths.for_job(job_file)
    assert paths == StatePaths(job.state_path)
    assert paths.db == tmp_path / "copy.state.sqlite"
    assert paths.log == job.log_path == tmp_path / "copy.state.log"
    assert paths.lock == tmp_path / "copy.state.lock"
    assert (paths.wal.name, paths.shm.name, paths.journal.name) == (
        "copy.state.sqlite-wal",
        "copy.state.sqlite-shm",
        "copy.state.sqlite-journal",
    )
    assert paths.verified.name == "copy.state.sqlite-verified"
    assert paths.files == (paths.db, paths.wal, paths.shm, paths.journal, paths.verified, paths.lock)
    assert state_files(job.state_path) == list(paths.files)
    assert paths.existing() == [] and paths.backups() == []


def test_move_aside_keeps_every_backup_and_lists_them_oldest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = StatePaths(tmp_path / "j.state.sqlite")
    assert paths.move_aside() is None  # nothing to move
    real_strftime = time.strftime
    now = [1_700_000_000.0]
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: real_strftime(fmt, time.localtime(now[0])))
    moved = []
    for keys, at in ((["1"], 1_700_000_000.0), (["2"], 1_700_000_000.0), (["3"], 1_700_000_000.0)):
        now[0] = at
        make_state(paths.db, keys)
        moved.append(paths.move_aside())
        assert not paths.db.exists()
    now[0] = 1_700_000_001.0
    make_state(paths.db, ["4"])
    moved.append(paths.move_aside())
    stamp = real_strftime("%Y%m%d-%H%M%S", time.localtime(1_700_000_000))
    assert [p.name for p in moved if p] == [
        f"j.state.sqlite.bak-{stamp}",
        f"j.state.sqlite.bak-{stamp}.2",
        f"j.state.sqlite.bak-{stamp}.3",
        "j.state.sqlite.bak-" + real_strftime("%Y%m%d-%H%M%S", time.localtime(1_700_000_001)),
    ]
    assert paths.backups() == moved
    assert [keys_in(p) for p in paths.backups()] == [["1"], ["2"], ["3"], ["4"]]


def test_a_taken_backup_name_is_never_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = StatePaths(tmp_path / "j.state.sqlite")
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20240101-000000")
    taken = tmp_path / "j.state.sqlite.bak-20240101-000000"
    taken.write_text("someone's file")
    (tmp_path / "j.state.sqlite.bak-20240101-000000.2-wal").write_text("a stray WAL")
    make_state(paths.db, ["1"])
    backup = paths.move_aside()
    assert backup == tmp_path / "j.state.sqlite.bak-20240101-000000.3"
    assert taken.read_text() == "someone's file"
    assert keys_in(backup) == ["1"]


def test_move_aside_takes_the_uncheckpointed_wal_along(tmp_path: Path) -> None:
    db = tmp_path / "j.state.sqlite"
    # a run killed after committing: its last transactions are only in the WAL
    subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import os
            from pathlib import Path
            from scanjobs.state import StateStore
            store = StateStore.open(Path({str(db)!r}), fingerprint="f")
            store.add_items("scan", [("1", 1), ("2", 2)])
            os._exit(0)
            """),
        ],
        check=True,
    )
    paths = StatePaths(db)
    assert paths.wal.exists() and paths.wal.stat().st_size > 0
    backup = paths.move_aside()
    assert backup is not None
    assert not any(p.exists() for p in paths.database_files)
    assert (tmp_path / (backup.name + "-wal")).exists()
    assert keys_in(backup) == ["1", "2"]


def test_delete_removes_the_state_and_keeps_backups_and_log(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path / "j.state.sqlite")
    assert paths.delete() == []
    make_state(paths.db, ["1"])
    backup = paths.move_aside()
    make_state(paths.db, ["2"])
    paths.log.write_text("the log")
    paths.lock.write_text("")
    (tmp_path / "other.state.sqlite").write_text("another job's state")
    existing = paths.existing()
    assert paths.db in existing and paths.lock in existing
    assert paths.delete() == existing
    assert paths.existing() == []
    assert backup is not None and keys_in(backup) == ["1"]
    assert paths.log.read_text() == "the log"
    assert (tmp_path / "other.state.sqlite").exists()


def test_delete_is_refused_while_a_run_holds_the_lock(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path / "j.state.sqlite")
    make_state(paths.db, ["1"])
    with RunLock(paths.lock), pytest.raises(LockedError, match=f"pid {os.getpid()}"):
        paths.delete()
    assert keys_in(paths.db) == ["1"]


def test_readonly_uri_quotes_what_a_uri_would_read(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path / "a #b ?c %41" / "j.state.sqlite")
    uri = paths.readonly_uri
    assert uri.endswith("?mode=ro") and "#" not in uri and uri.count("?") == 1 and "%41" not in uri
    paths.db.parent.mkdir()
    make_state(paths.db, ["1"])
    conn = sqlite3.connect(uri, uri=True)
    try:
        assert conn.execute("SELECT key FROM items").fetchall() == [("1",)]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("DELETE FROM items")
    finally:
        conn.close()

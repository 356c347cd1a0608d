"""A run checks every page of its state before it writes, unless the file is exactly as the last
clean close of a checked state left it (`scanjobs/state/verified.py`): a rerun of a job of 100k
scans skips the half second of the check, and anything else that touched the file does not."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from scanjobs.errors import StateError
from scanjobs.state import ItemKind, StatePaths, StateStore, migrations


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files whose every page was checked, in order."""
    seen: list[Path] = []
    real = migrations.quick_check

    def counting(conn: sqlite3.Connection, path: Path) -> str:
        seen.append(path)
        return real(conn, path)

    monkeypatch.setattr(migrations, "quick_check", counting)
    return seen


def written(path: Path, items: int = 3000) -> StatePaths:
    """A state written and closed cleanly by a run (several pages)."""
    store = StateStore.open(path, fingerprint="f")
    store.add_items(ItemKind.IMAGE, [(f"1:{i}", 1) for i in range(items)])
    store.close()
    return StatePaths(path)


def damage(path: Path) -> None:
    """Every page but the first two overwritten in the middle: what quick_check finds."""
    data = bytearray(path.read_bytes())
    page = 4096
    for at in range(2 * page, len(data) - page, page):
        data[at + 100 : at + 400] = b"\xff" * 300
    path.write_bytes(bytes(data))


def test_a_clean_close_spares_the_next_run_the_check(tmp_path: Path, checks: list[Path]) -> None:
    paths = written(tmp_path / "j.state.sqlite")
    assert checks == []  # a new file has nothing to check
    assert paths.verified.exists() and not paths.wal.exists()
    for _ in range(3):  # each run records the file it leaves
        store = StateStore.open(paths.db, fingerprint="f")
        store.mark_done(ItemKind.IMAGE, "1:5", "download")
        store.close()
    assert checks == []
    reader = StateStore.open(paths.db, create=False)  # plan, or an analysis reading a copy's state
    assert reader.get(ItemKind.IMAGE, "1:5") is not None
    reader.close()
    assert checks == []


def test_a_file_changed_since_is_checked_whole_and_refused_when_damaged(
    tmp_path: Path, checks: list[Path]
) -> None:
    paths = written(tmp_path / "j.state.sqlite")
    before = paths.db.stat()
    damage(paths.db)
    os.utime(
        paths.db, ns=(before.st_atime_ns, before.st_mtime_ns)
    )  # its times put back: the change time stays
    assert paths.db.stat().st_size == before.st_size
    with pytest.raises(StateError, match="damaged|unreadable"):
        StateStore.open(paths.db, fingerprint="f")
    assert checks == [paths.db]


def test_a_killed_run_s_wal_means_a_whole_check(tmp_path: Path, checks: list[Path]) -> None:
    paths = written(tmp_path / "j.state.sqlite")
    # a run writes, and is killed before it closes: its transactions stay in the WAL
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "c.execute('UPDATE items SET attempts = attempts + 1'); os._exit(0)",
            str(paths.db),
        ],
        check=True,
    )
    assert killed.returncode == 0 and paths.wal.stat().st_size > 0
    StateStore.open(paths.db, fingerprint="f").close()
    assert checks == [paths.db]
    StateStore.open(paths.db, fingerprint="f").close()  # the clean close recorded it
    assert checks == [paths.db]


def test_a_record_describes_one_file_at_one_place(tmp_path: Path, checks: list[Path]) -> None:
    (tmp_path / "a").mkdir()
    paths = written(tmp_path / "a" / "j.state.sqlite")
    other = StatePaths(tmp_path / "b" / "j.state.sqlite")
    other.db.parent.mkdir()
    shutil.copy2(paths.db, other.db)  # a copy keeps the times, not the inode
    shutil.copy2(paths.verified, other.verified)
    StateStore.open(other.db, fingerprint="f").close()
    assert checks == [other.db]
    paths.verified.write_text("{not json")  # a record that is not one
    StateStore.open(paths.db, fingerprint="f").close()
    assert checks == [other.db, paths.db]
    assert paths.verified.read_text().startswith("{")  # the clean close wrote it again
    StateStore.open(paths.db, fingerprint="f").close()
    assert checks == [other.db, paths.db]


def test_moving_aside_or_deleting_the_state_drops_its_record(tmp_path: Path) -> None:
    paths = written(tmp_path / "j.state.sqlite")
    backup = paths.move_aside()
    assert backup is not None and not paths.verified.exists()
    assert not StatePaths(backup).verified.exists()
    paths = written(paths.db)
    assert paths.verified in paths.existing()
    paths.delete()
    assert paths.existing() == []


def test_a_folder_in_the_record_s_place_is_no_record_and_no_obstacle(
    tmp_path: Path, checks: list[Path]
) -> None:
    paths = written(tmp_path / "j.state.sqlite")
    paths.verified.unlink()
    paths.verified.mkdir()
    StateStore.open(paths.db, fingerprint="f").close()  # checked whole; nothing recorded
    assert checks == [paths.db] and paths.verified.is_dir()
    assert paths.move_aside() is not None
    written(paths.db)
    paths.delete()
    assert not paths.db.exists()


def test_no_record_after_a_failed_write_or_from_a_reader(tmp_path: Path) -> None:
    paths = written(tmp_path / "j.state.sqlite")
    paths.verified.unlink()
    StateStore.open(paths.db, create=False).close()  # a reader writes nothing beside the state
    assert not paths.verified.exists()
    store = StateStore.open(paths.db, fingerprint="f")
    store._broken = "disk full"  # what a refused write leaves: see test_disk_full
    store.close()
    assert not paths.verified.exists()

"""A state whose file refuses writes (disk full) raises StateError at once, and for every later write."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from scanjobs.errors import ExitCode, StateError
from scanjobs.state import ItemKind, StateStore


def full_store(tmp_path: Path) -> StateStore:
    """A store whose database may not grow by a page more: SQLite answers SQLITE_FULL."""
    store = StateStore.open(tmp_path / "job.state.sqlite", fingerprint="f")
    with store.transaction() as c:
        pages = c.execute("PRAGMA page_count").fetchone()[0]
        c.execute(f"PRAGMA max_page_count={pages}")
    return store


def test_a_refused_write_is_a_state_error_and_every_later_write_too(tmp_path: Path) -> None:
    """Issue 12, point 1: the first failed write and every one after it raise StateError (exit 4),
    so no worker thread goes on acting on work that no record remembers."""
    store = full_store(tmp_path)
    keys = [(f"{i:06d}" + "x" * 500, i) for i in range(2000)]
    with pytest.raises(StateError) as first:
        store.add_items(ItemKind.SCAN, keys)
    assert first.value.exit_code == ExitCode.STATE
    assert "cannot write the state file" in str(first.value)
    assert "full" in str(first.value)
    with pytest.raises(StateError):
        store.set_meta("small", "1")  # would fit, but the state is no longer trusted to write
    store.close()


def test_a_wrong_statement_stays_a_bug_not_a_state_error(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "job.state.sqlite", fingerprint="f")
    with pytest.raises(sqlite3.OperationalError), store.transaction() as c:
        c.execute("SELECT no_such_column FROM meta")
    store.set_meta("still", "writable")  # a bug in one statement does not poison the store
    assert store.meta("still") == "writable"
    store.close()

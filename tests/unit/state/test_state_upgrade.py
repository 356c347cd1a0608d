"""A state file of format 1 (as scanjobs wrote it before the numbered migrations) is upgraded when
opened to write, read as it is when opened to read, and left untouched when refused.

Uses only what existed before the migrations, so that it runs on either code.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from scanjobs.errors import StateError
from scanjobs.state import FORMAT_VERSION, StateStore
from scanjobs.state.store import COUNTS_SQL

# the schema format 1 had when it was released (before the items_seq index)
SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    kind TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, step TEXT NOT NULL,
    status TEXT NOT NULL, source_id INTEGER, target_id INTEGER, request_uid TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, error_class TEXT, error_message TEXT, data TEXT,
    updated_at REAL NOT NULL, PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS items_status ON items (kind, status);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, started_at REAL NOT NULL, finished_at REAL, pid INTEGER NOT NULL,
    host TEXT NOT NULL, exit_code INTEGER, summary TEXT
);
"""

ITEMS = [
    ("scan", "10", 1, "create", "done", 10, 99, "u-10", 1, None, None, '{"files": [1, 2]}', 1.5),
    ("scan", "11", 2, "upload", "failed", 11, None, None, 2, "ValueError", "400 Bad Request", None, 2.5),
    ("file", "7", 1, "upload", "running", 7, None, None, 1, None, None, '{"sha256": "ab"}', 3.5),
]


def write_version_1(path: Path, fingerprint: str = "f") -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA_V1)
    conn.execute("INSERT INTO meta VALUES ('format_version', '1')")
    conn.execute("INSERT INTO meta VALUES ('created_at', '1700000000.0')")
    conn.execute("INSERT INTO meta VALUES ('fingerprint', ?)", (fingerprint,))
    conn.executemany(f"INSERT INTO items VALUES ({','.join('?' * 13)})", ITEMS)
    conn.execute("INSERT INTO runs VALUES (1, 1.0, 2.0, 123, 'host', 1, '{\"done\": 1}')")
    conn.close()


def raw(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def items_of(path: Path) -> list[tuple[object, ...]]:
    return raw(path, "SELECT * FROM items ORDER BY kind DESC, seq")


def test_a_version_1_file_is_upgraded_when_opened_to_write(tmp_path: Path) -> None:
    path = tmp_path / "j.state.sqlite"
    write_version_1(path)
    assert "items_seq" not in str(raw(path, "SELECT name FROM sqlite_master"))

    store = StateStore.open(path, fingerprint="f")
    rec = store.get("scan", "10")
    assert rec is not None and rec.status == "done" and rec.target_id == 99 and rec.data == {"files": [1, 2]}
    store.close()

    assert FORMAT_VERSION == 4
    assert raw(path, "SELECT value FROM meta WHERE key='format_version'") == [("4",)]
    # format 3: every item is selected until a run of the job says otherwise
    assert raw(path, "SELECT DISTINCT selected FROM items") == [(1,)]
    assert ("items_seq",) in raw(path, "SELECT name FROM sqlite_master WHERE type='index'")
    plan = raw(path, "EXPLAIN QUERY PLAN SELECT MAX(seq) FROM items WHERE kind='file'")
    assert "items_seq" in str(plan)
    # format 4: the counts of `status` read the index alone
    plan = raw(path, f"EXPLAIN QUERY PLAN {COUNTS_SQL}")
    assert "COVERING INDEX items_counts" in str(plan) and "GROUP BY" not in str(plan)
    assert [row[:13] for row in items_of(path)] == ITEMS  # the version-1 fields are intact
    assert raw(path, "SELECT id, exit_code, summary FROM runs") == [(1, 1, json.dumps({"done": 1}))]
    assert raw(path, "SELECT value FROM meta WHERE key='created_at'") == [("1700000000.0",)]


def test_an_upgraded_file_has_the_schema_of_a_new_one(tmp_path: Path) -> None:
    old, new = tmp_path / "old.state.sqlite", tmp_path / "new.state.sqlite"
    write_version_1(old)
    StateStore.open(old, fingerprint="f").close()
    StateStore.open(new, fingerprint="f").close()
    schema = "SELECT type, name, tbl_name FROM sqlite_master ORDER BY name"
    assert raw(old, schema) == raw(new, schema)
    assert raw(new, "SELECT value FROM meta WHERE key='format_version'") == [(str(FORMAT_VERSION),)]


def test_a_version_1_file_opened_to_read_is_read_and_left_at_version_1(tmp_path: Path) -> None:
    path = tmp_path / "j.state.sqlite"
    write_version_1(path)
    before = path.read_bytes()
    store = StateStore.open(path, create=False)
    assert [r.key for r in store.items("scan")] == ["10", "11"]
    assert store.meta("format_version") == "1"
    store.close()
    assert path.read_bytes() == before


def test_a_version_1_file_of_a_changed_job_is_refused_before_any_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "j.state.sqlite"
    write_version_1(path, fingerprint="old")
    before = path.read_bytes()
    with pytest.raises(StateError, match="the job changed"):
        StateStore.open(path, fingerprint="new")
    assert path.read_bytes() == before
    assert raw(path, "SELECT value FROM meta WHERE key='format_version'") == [("1",)]

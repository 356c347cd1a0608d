"""The state's format: the schema of version 1 and the numbered migrations that lead from it to
FORMAT_VERSION. A new file is created at version 1 and migrated like any old file, so that every
file of a version has the same schema whatever scanjobs created it.

To change the format: append a `Migration` numbered FORMAT_VERSION + 1 and raise FORMAT_VERSION.
Never edit a migration that was released; an older scanjobs refuses a file of a newer version.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from scanjobs.errors import StateError
from scanjobs.state import verified
from scanjobs.state.paths import StatePaths

__all__ = [
    "FORMAT_VERSION",
    "Migration",
    "MIGRATIONS",
    "SCHEMA_V1",
    "check_existing",
    "quick_check",
    "recorded_version",
    "create",
    "upgrade",
]

FORMAT_VERSION = 4

SCHEMA_V1: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS items (
    kind TEXT NOT NULL,              -- scan | file | image
    key TEXT NOT NULL,               -- the source id (or scan:file for images)
    seq INTEGER NOT NULL,            -- order of selection
    step TEXT NOT NULL,              -- the last step reached
    status TEXT NOT NULL,            -- pending | running | done | failed
    source_id INTEGER,
    target_id INTEGER,
    request_uid TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    error_class TEXT,
    error_message TEXT,
    data TEXT,                       -- JSON, mode specific (paths, sizes, checksums)
    updated_at REAL NOT NULL,
    PRIMARY KEY (kind, key)
)""",
    "CREATE INDEX IF NOT EXISTS items_status ON items (kind, status)",
    """CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started_at REAL NOT NULL,
    finished_at REAL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    exit_code INTEGER,
    summary TEXT
)""",
)


@dataclass(frozen=True, slots=True)
class Migration:
    """The statements that take a file from format `version - 1` to `version`."""

    version: int
    summary: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        2,
        "index items by (kind, seq): a transition with `ensure` numbers a new item by MAX(seq), "
        "which without it reads every item of the kind",
        ("CREATE INDEX IF NOT EXISTS items_seq ON items (kind, seq)",),
    ),
    Migration(
        3,
        "items.selected: whether the job still selects the item (scans removed from a job leave its "
        "reports and status, and their record stays, so adding them back never redoes their work)",
        ("ALTER TABLE items ADD COLUMN selected INTEGER NOT NULL DEFAULT 1",),
    ),
    Migration(
        4,
        "index items by (kind, selected, step, status): `status` counts them from the index alone "
        "(a job of 100k scans: 0.04 s, where reading every item took 0.25 s)",
        ("CREATE INDEX IF NOT EXISTS items_counts ON items (kind, selected, step, status)",),
    ),
)


def recorded_version(conn: sqlite3.Connection) -> int:
    """The format version a file records (0 when it records none)."""
    row = conn.execute("SELECT value FROM meta WHERE key='format_version'").fetchone()
    return int(row[0]) if row else 0


def create(conn: sqlite3.Connection) -> None:
    """Write the schema of version 1 into an empty database; the caller holds a transaction."""
    for statement in SCHEMA_V1:
        conn.execute(statement)
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('format_version', '1')")
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('created_at', ?)", (str(time.time()),))


def upgrade(conn: sqlite3.Connection) -> int:
    """Apply, in order, the migrations the file has not had and record each one's version; the
    caller holds a (write) transaction, so a file is upgraded entirely or not at all. Returns
    the version the file is now at."""
    version = recorded_version(conn)
    if not 1 <= version <= FORMAT_VERSION:
        raise StateError(
            f"cannot upgrade a state file of format {version} (this scanjobs writes {FORMAT_VERSION})"
        )
    for migration in MIGRATIONS:
        if migration.version <= version:
            continue
        for statement in migration.statements:
            conn.execute(statement)
        conn.execute("UPDATE meta SET value=? WHERE key='format_version'", (str(migration.version),))
        version = migration.version
    return version


def quick_check(conn: sqlite3.Connection, path: Path) -> str:
    """SQLite's check of every page of the file `conn` reads (`path`): "ok", or the first
    problem found."""
    row = conn.execute("PRAGMA quick_check").fetchone()
    return str(row[0]) if row else "?"


def check_existing(path: Path, *, verify: bool = True) -> int:
    """Refuse, without writing a byte, a state file we cannot fully trust (damaged, not ours, of
    no or of a newer format); return its format version.

    `verify` checks every page (SQLite's quick_check: half a second for 100k scans), unless the
    file is exactly as the last clean close of a checked state left it (`verified.py`). Without
    it the pages are not checked, for a reader that turns a damaged page met later into a
    StateError itself."""
    remedy = (
        f"move it aside (or `scanjobs reset` the job) only if you are sure the work it "
        f"records can be redone: {path}"
    )
    try:
        # read-only through a quoted URI: a plain path would be read as a URI's query or fragment
        conn = sqlite3.connect(StatePaths(path).readonly_uri, uri=True, timeout=5)
    except sqlite3.Error as exc:
        raise StateError(f"cannot open state file {path}: {exc}", hint=remedy) from None
    try:
        check = quick_check(conn, path) if verify and not verified.still_verified(StatePaths(path)) else "ok"
        if check != "ok":
            raise StateError(f"state file is damaged ({check}): {path}", hint=remedy)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" not in tables:
            raise StateError(f"not a scanjobs state file: {path}", hint=remedy)
        version = recorded_version(conn)
    except sqlite3.DatabaseError as exc:
        raise StateError(f"state file is unreadable ({exc}): {path}", hint=remedy) from None
    finally:
        conn.close()
    if version > FORMAT_VERSION:
        raise StateError(
            f"state file {path} was written by a newer scanjobs (format {version}, this one "
            f"reads {FORMAT_VERSION})",
            hint="upgrade scanjobs; do not delete the file, it records work already done",
        )
    if version < 1:
        raise StateError(f"state file {path} has no format version", hint=remedy)
    return version

"""The record that a state file was checked whole and has not changed since but by scanjobs.

A run checks every page of its state before it writes (SQLite's `quick_check`: half a second
for a job of 100k scans, every rerun). The run that checked it, or created it, and then closed
it cleanly writes `<state>-verified` beside it: the file's identity as it left it (device,
inode, size, modification and change times, and a digest of its first page). The next run
skips the check when the file is still exactly that: the same file, not written since, with no
WAL left over (a killed run's), so that nothing but scanjobs runs, which hold the run lock,
has written to it in between. A copy, a restore, an edit, a file synced in from elsewhere or a
run killed mid-write (its WAL, or new times) all make the next run check every page again.

What it cannot see is what the check would not reliably see either: the disk itself losing
bits under a file whose metadata did not change.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from scanjobs.fsutil import atomic_open
from scanjobs.state.paths import StatePaths

__all__ = ["forget", "record", "still_verified"]

_FIRST_PAGE = 4096  # the header and the schema's root: what a truncation or overwrite hits first
_RECORD_MAX = 4096  # a record is ~250 bytes; a bigger file is not one


def _identity(db: Path) -> dict[str, Any] | None:
    """What must not change between the record and the next open, or None (no such file)."""
    try:
        with open(db, "rb") as fh:
            info = os.fstat(fh.fileno())
            head = fh.read(_FIRST_PAGE)
    except OSError:
        return None
    return {
        "dev": info.st_dev,
        "ino": info.st_ino,
        "size": info.st_size,
        "mtime_ns": info.st_mtime_ns,
        "ctime_ns": info.st_ctime_ns,
        "head": hashlib.sha256(head).hexdigest(),
    }


def _no_wal(paths: StatePaths) -> bool:
    """No write-ahead log with content beside the database (a killed run leaves one)."""
    try:
        return paths.wal.stat().st_size == 0
    except FileNotFoundError:
        return True
    except OSError:
        return False


def still_verified(paths: StatePaths) -> bool:
    """The database is exactly as the last clean close of a checked state left it."""
    if not _no_wal(paths):
        return False
    try:
        with open(paths.verified, "rb") as fh:
            recorded = json.loads(fh.read(_RECORD_MAX))
    except (OSError, ValueError):
        return False
    identity = _identity(paths.db)
    return identity is not None and recorded == identity


def record(paths: StatePaths) -> None:
    """After a clean close of a checked state: remember the database as it is now. Nothing is
    recorded while a WAL is left (another connection still open); a record that cannot be
    written only means that the next run checks every page."""
    identity = _identity(paths.db) if _no_wal(paths) else None
    if identity is None:
        forget(paths)
        return
    with contextlib.suppress(OSError), atomic_open(paths.verified, "w", encoding="utf-8") as fh:
        json.dump(identity, fh, sort_keys=True)


def forget(paths: StatePaths) -> None:
    """Drop the record (the database is moved aside or deleted)."""
    with contextlib.suppress(OSError):
        paths.verified.unlink(missing_ok=True)

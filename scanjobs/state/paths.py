"""The files of one job's state, named in one place, and what is done to them as a whole."""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path

from scanjobs.state.lock import RunLock

__all__ = ["StatePaths", "state_files", "sqlite_uri"]

# SQLite's own files beside a database, named by appending to the database's name
_SIDECARS = ("-wal", "-shm", "-journal")
_BACKUP = ".bak-"


def sqlite_uri(path: Path, *, mode: str) -> str:
    """An SQLite URI for `path` (e.g. `mode="ro"`), percent-encoded: a path may hold `#`, `?`,
    `%` or spaces, which a URI would otherwise read as its fragment, query or escapes."""
    return f"{path.absolute().as_uri()}?mode={mode}"


@dataclass(frozen=True, slots=True)
class StatePaths:
    """The state of one job: `<stem>.state.sqlite` beside the job file, SQLite's WAL, SHM and
    journal beside it, the record that it was verified (`<stem>.state.sqlite-verified`), the
    run lock `<stem>.state.lock`, the log `<stem>.state.log`, and the
    backups `--restart` keeps (`<stem>.state.sqlite.bak-<time>[.<n>]`, with their own WAL...)."""

    db: Path

    @classmethod
    def for_job(cls, job_path: Path) -> StatePaths:
        return cls(job_path.with_name(job_path.stem + ".state.sqlite"))

    @property
    def wal(self) -> Path:
        return self._beside(self.db, "-wal")

    @property
    def shm(self) -> Path:
        return self._beside(self.db, "-shm")

    @property
    def journal(self) -> Path:
        return self._beside(self.db, "-journal")

    @property
    def verified(self) -> Path:
        """The record that the database was checked whole and is unchanged since (`verified.py`)."""
        return self._beside(self.db, "-verified")

    @property
    def lock(self) -> Path:
        return self.db.with_suffix(".lock")

    @property
    def log(self) -> Path:
        return self.db.with_suffix(".log")

    @property
    def database_files(self) -> tuple[Path, Path, Path, Path]:
        """The database and SQLite's files beside it: what holds the recorded work."""
        return (self.db, self.wal, self.shm, self.journal)

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file that belongs to the state (and nothing else): the database files, the
        record that they were verified, and the lock. The log and the backups are not the state;
        they stay when it is deleted."""
        return (*self.database_files, self.verified, self.lock)

    @property
    def readonly_uri(self) -> str:
        return sqlite_uri(self.db, mode="ro")

    def existing(self) -> list[Path]:
        """The files of `files` that exist."""
        return [p for p in self.files if p.exists()]

    def backups(self) -> list[Path]:
        """The backups of the database that exist, oldest first (their WAL/SHM/journal beside)."""
        prefix = self.db.name + _BACKUP
        try:
            names = [
                entry.name
                for entry in os.scandir(self.db.parent)
                if entry.name.startswith(prefix) and not entry.name.endswith(_SIDECARS)
            ]
        except FileNotFoundError:
            return []
        return [self.db.with_name(n) for n in sorted(names, key=lambda n: _backup_order(n[len(prefix) :]))]

    def move_aside(self) -> Path | None:
        """Move the database files to a new backup name and return it (None without a database).

        Never replaces a file: a backup name already taken (two restarts within a second) gets
        the next number. The caller holds the run lock, so no run has the database open.
        """
        if not self.db.exists():
            return None
        self._drop_verified()  # it describes the file at its place, not a backup
        backup = self._reserve_backup(time.strftime("%Y%m%d-%H%M%S"))
        for path, suffix in zip(self.database_files, ("", *_SIDECARS), strict=True):
            if path.exists():
                # onto `backup` itself: the empty file that reserved its name
                os.replace(path, self._beside(backup, suffix))
        return backup

    def delete(self) -> list[Path]:
        """Delete the state (what `files` names), taking the run lock first (LockedError while a
        run holds it); return the files that were deleted. Backups and the log stay."""
        files = self.existing()
        if not files:
            return []
        with RunLock(self.lock):
            self._drop_verified()
            for path in self.database_files:
                path.unlink(missing_ok=True)
        self.lock.unlink(missing_ok=True)
        return files

    def _drop_verified(self) -> None:
        """Remove the record that the database was verified; something else in its place (a
        folder) is left, and never read as a record."""
        with contextlib.suppress(OSError):
            self.verified.unlink(missing_ok=True)

    def _reserve_backup(self, stamp: str) -> Path:
        """A backup name that no file has, reserved by creating it empty (O_EXCL: atomically)."""
        for n in itertools.count(1):
            backup = self.db.with_name(f"{self.db.name}{_BACKUP}{stamp}" + (f".{n}" if n > 1 else ""))
            if any(self._beside(backup, s).exists() for s in _SIDECARS):
                continue
            try:
                fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            os.close(fd)
            return backup
        raise AssertionError("unreachable")  # itertools.count never ends

    @staticmethod
    def _beside(path: Path, suffix: str) -> Path:
        return path.with_name(path.name + suffix)


def _backup_order(rest: str) -> tuple[str, int]:
    """'20240102-030405' -> (stamp, 1); '20240102-030405.2' -> (stamp, 2); other names by their text."""
    stamp, _, n = rest.partition(".")
    with contextlib.suppress(ValueError):
        return (stamp, int(n) if n else 1)
    return (rest, 0)


def state_files(state_path: Path) -> list[Path]:
    """Every file that belongs to a job's state (and nothing else); see `StatePaths.files`."""
    return list(StatePaths(state_path).files)

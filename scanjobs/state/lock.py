"""The run lock of one job: one run at a time, and who holds it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from scanjobs.errors import LockedError
from scanjobs.fsutil import lock_exclusive, lock_holder_text

__all__ = ["RunLock", "PROBE_GRACE"]

PROBE_GRACE = 0.5  # seconds a run waits for a lock that a `status` probe may hold shared


class RunLock:
    """An exclusive lock of one job: flock on `<state>.lock`, holding pid, host and start time.

    The kernel drops a flock when its process dies, so a lock left by a killed run is free to
    take; the file's content only serves the messages.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self.took_over: dict[str, Any] | None = None

    def holder(self) -> dict[str, Any] | None:
        try:
            info = json.loads(self.path.read_text() or "null")
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def running(self) -> dict[str, Any] | None:
        """The holder's details while a live run holds the lock (its flock, not its file's
        details, which a killed run leaves behind), else None."""
        if lock_holder_text(self.path) is None:
            return None
        return self.holder() or {}

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        # A `status` probing the lock holds it shared for an instant: only a lock still held
        # after a short grace means another run.
        try:
            taken = lock_exclusive(fd, PROBE_GRACE)
        except OSError:
            os.close(fd)
            raise
        if not taken:
            os.close(fd)
            info = self.holder() or {}
            raise LockedError(
                f"another run of this job is going: pid {info.get('pid', '?')} on "
                f"{info.get('host', '?')} since {info.get('started', '?')} (lock {self.path})",
                hint="wait for it to finish, or stop it; `scanjobs status JOB` shows its progress",
            ) from None
        previous = self.holder()
        if previous and previous.get("pid") != os.getpid():
            self.took_over = previous  # its holder is gone: the kernel released its flock
        os.ftruncate(fd, 0)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.write(fd, json.dumps(info).encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

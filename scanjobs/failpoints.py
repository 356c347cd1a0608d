"""Named crash points for reliability tests: SCANJOBS_FAILPOINTS=after_create:2 kills the process there.

Points: mid_download, after_upload (uploaded, not yet recorded), before_create (intent recorded,
not yet sent), after_create (created, not yet recorded), mid_state_write (inside a state
transaction, before it commits). `name:N` fires at the N-th hit (default 1). Several points are
separated by commas. With the variable unset, `hit()` is one dict lookup.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

__all__ = ["hit", "POINTS", "FirstWrite"]

POINTS = ("mid_download", "after_upload", "before_create", "after_create", "mid_state_write")


def _parse(spec: str) -> dict[str, int]:
    armed: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, count = part.partition(":")
        if name not in POINTS:
            raise ValueError(f"unknown failpoint {name!r} (known: {', '.join(POINTS)})")
        armed[name] = int(count or 1)
    return armed


_ARMED = _parse(os.environ.get("SCANJOBS_FAILPOINTS", ""))
_HITS: dict[str, int] = {}
_LOCK = threading.Lock()


def hit(name: str) -> None:
    """Count a pass through `name`; SIGKILL this process when its armed count is reached."""
    if name not in _ARMED:
        return
    with _LOCK:
        _HITS[name] = _HITS.get(name, 0) + 1
        if _HITS[name] == _ARMED[name]:
            os.kill(os.getpid(), signal.SIGKILL)


class FirstWrite:
    """A writable file wrapper that passes `mid_download` after its first chunk is on disk."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.first = True

    def write(self, data: bytes) -> int:
        written = int(self.inner.write(data))
        if self.first:
            self.first = False
            self.inner.flush()
            hit("mid_download")
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

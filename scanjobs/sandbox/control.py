"""`sandbox info` and `sandbox down`: what a sandbox folder holds, whether it runs, and stopping it."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import psutil

from scanjobs.sandbox.folder import LOCK_GRACE, SandboxError, SandboxFolder
from scanjobs.sandbox.postgres import EmbeddedPostgres

__all__ = ["describe", "describe_lines", "down"]


def describe(directory: Path) -> dict[str, Any]:
    """Where the sandbox of `directory` is, its ports, whether it runs, where its credentials
    and data come from. Never a secret: only the path of the file that holds them."""
    folder = SandboxFolder(directory.resolve())
    pid = folder.running()
    info = folder.info() if pid is not None else None
    ports = folder.remembered_ports()
    seeded = folder.seeded()
    if pid is None and ports is None and seeded is None and not folder.info_file.exists():
        raise SandboxError(f"no sandbox in {folder.root}; start one: scanjobs sandbox up --dir {folder.root}")
    options = _mapping(info.get("options")) if info else {}
    report: dict[str, Any] = {
        "dir": str(folder.root),
        "running": pid is not None,
        "pid": pid or None,
        "ready": info is not None,
        "ports": dict(ports.items()) if ports else None,
        "ports_file": str(folder.ports_file),
        "api_urls": {name: f"http://127.0.0.1:{ports.api(name)}" for name in ("source", "target")}
        if ports
        else None,
        "credentials_file": str(folder.credentials_file) if folder.credentials_file.exists() else None,
        "data": {
            "seeded_on": str(seeded.get("seeded_on")),
            "seeded_with": _mapping(seeded.get("options")),
            "kept_at_this_start": info.get("data_kept") if info else None,
            "keep_data": options.get("keep_data"),
        }
        if seeded
        else None,
        "stale_info_file": str(folder.info_file) if pid is None and folder.info_file.exists() else None,
        "log": str(folder.log_file) if folder.log_file.exists() else None,
    }
    return report


def _mapping(value: object) -> dict[str, Any]:
    """A mapping read from a file of the folder, or {} for anything else (the files are input)."""
    return dict(value) if isinstance(value, dict) else {}


def describe_lines(report: dict[str, Any]) -> list[str]:
    """`describe` for people."""
    lines = [f"sandbox in {report['dir']}"]
    if report["running"]:
        state = "running" if report["ready"] else "starting (not ready yet)"
        stop = f"scanjobs sandbox down --dir {report['dir']}"
        lines.append(f"  {state}, pid {report['pid'] or '?'}; stop it with: {stop}")
    else:
        lines.append(f"  not running; start it with: scanjobs sandbox up --dir {report['dir']}")
    if report["stale_info_file"]:
        lines.append(f"  ({report['stale_info_file']} is left from a sandbox that was killed)")
    if report["ports"]:
        ports = report["ports"]
        lines += [
            f"  source API:   {report['api_urls']['source']}",
            f"  target API:   {report['api_urls']['target']}",
            f"  PostgreSQL:   127.0.0.1:{ports['postgres']} (databases source and target, user proxyuser)",
            f"  ports:        kept in {report['ports_file']}: the same at every start in this folder",
        ]
    else:
        lines.append("  ports:        none yet (chosen at the first start, then kept)")
    if report["credentials_file"]:
        lines.append(
            f"  credentials:  {report['credentials_file']} (made at the first start, kept across "
            "restarts; `scanjobs init MODE JOB --sandbox DIR` copies them into the job's .env)"
        )
    data = report["data"]
    if data:
        seeded = ", ".join(f"{k} {v}" for k, v in data["seeded_with"].items() if v is not None)
        kept = (
            "kept from an earlier start (--keep-data)"
            if data["kept_at_this_start"]
            else "kept at the next start only with --keep-data"
        )
        lines.append(f"  data:         seeded on {data['seeded_on']} with {seeded}; {kept}")
    if report["log"]:
        lines.append(f"  log:          {report['log']}")
    return lines


def _holder(folder: SandboxFolder, pid: int) -> psutil.Process | None:
    """The process holding the folder's lock, checked by its open files (the lock file tells a
    pid; only a process with the lock file open is signalled)."""
    give_up = time.monotonic() + 2 * LOCK_GRACE
    while pid == 0:  # it holds the lock, but has not written its pid yet
        if time.monotonic() >= give_up:
            raise SandboxError(f"{folder.lock_file} is locked, but names no pid; stop that sandbox by hand")
        time.sleep(0.02)
        now = folder.running()
        if now is None:
            return None
        pid = now
    try:
        proc = psutil.Process(pid)
        held = any(Path(f.path) == folder.lock_file for f in proc.open_files())
    except psutil.NoSuchProcess:  # it exited since the probe
        return None
    except (ValueError, OverflowError):  # the lock file names no possible pid
        held, proc = False, None
    except psutil.AccessDenied:
        raise SandboxError(
            f"the sandbox in {folder.root} runs as pid {pid}, a process this user may not stop"
        ) from None
    if not held or proc is None:
        raise SandboxError(
            f"{folder.lock_file} is locked, but pid {pid} (which it names) does not hold it; "
            "stop that sandbox by hand"
        )
    return proc


def down(directory: Path, timeout: float = 60.0) -> str:
    """Stop the sandbox running in `directory` (SIGTERM; it stops its PostgreSQL) and wait for it
    to exit; kill it after `timeout`. Without one, stop a PostgreSQL a killed sandbox left."""
    folder = SandboxFolder(directory.resolve())
    leftover = EmbeddedPostgres(folder.pg_root, 0)
    pid = folder.running()
    proc = None if pid is None else _holder(folder, pid)
    if proc is None:
        stopped = leftover.stop_leftover()
        extra = "; stopped the PostgreSQL a killed sandbox had left running" if stopped else ""
        return f"no sandbox runs in {folder.root}{extra}"
    proc.terminate()
    try:
        proc.wait(timeout)
    except psutil.TimeoutExpired:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
            proc.wait(10)
        leftover.stop_leftover()
        return f"the sandbox in {folder.root} (pid {proc.pid}) did not stop in {timeout:.0f}s: killed it"
    except psutil.NoSuchProcess:
        pass
    return f"stopped the sandbox in {folder.root} (pid {proc.pid})"

"""`Sandbox`: run `sandbox up` as a subprocess for tests and benchmarks, as a context manager."""

from __future__ import annotations

import contextlib
import ctypes
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from scanjobs.sandbox.options import SandboxOptions

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies, so a sandbox never outlives its tests."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Sandbox:
    """A running sandbox; `with Sandbox(tmp_path, scans=5) as sb: sb.source_api ...`."""

    def __init__(self, dir: Path, *, start_timeout: float = 60.0, **options: Any) -> None:
        self.dir = Path(dir).resolve()
        self.options = SandboxOptions(dir=self.dir, **options)
        self.start_timeout = start_timeout
        self.info: dict[str, Any] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.dir / "sandbox.log"

    @property
    def source_api(self) -> str:
        return str(self.info["instances"]["source"]["api_url"])

    @property
    def target_api(self) -> str:
        return str(self.info["instances"]["target"]["api_url"])

    def api(self, instance: str) -> str:
        """The API base URL of `source` or `target`."""
        return str(self.info["instances"][instance]["api_url"])

    def start(self) -> Sandbox:
        """Start the subprocess and wait (with a deadline) until it has written sandbox.json."""
        self.dir.mkdir(parents=True, exist_ok=True)
        # Not removed here: a sandbox that already runs in the folder keeps its file (the new
        # one refuses to start); ours is the one that names our child's pid.
        info_path = self.dir / "sandbox.json"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "scanjobs.sandbox", "up", *self.options.to_argv()],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        deadline = time.monotonic() + self.start_timeout
        delay = 0.02
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sandbox exited with {self.proc.returncode}: {self._log_tail()}")
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                info = json.loads(info_path.read_text())
                if info.get("pid") == self.proc.pid:
                    self.info = info
                    return self
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)
        self.stop()
        raise TimeoutError(f"sandbox not ready after {self.start_timeout}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-2000:]
        return ""

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait for the clean shutdown (postgres included), kill after `timeout`."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Runtime controls: served on every instance's port, never faulted nor counted.
    def stats(self, instance: str = "source") -> dict[str, Any]:
        """Request counts of one instance since start or the last `reset_stats()`: per route and
        status, the first arrival's wall-clock time (`first_request_at`), and arrivals per whole
        second (`per_second`, {epoch second: count}) with their `max_per_second`."""
        response = requests.get(f"{self.api(instance)}/_sandbox/stats", timeout=10)
        response.raise_for_status()
        stats = dict(response.json())
        stats["per_second"] = {int(second): n for second, n in stats["per_second"].items()}
        return stats

    def reset_stats(self) -> None:
        """Zero the statistics of both instances."""
        requests.post(f"{self.source_api}/_sandbox/stats/reset", timeout=10).raise_for_status()

    def configure(self, **runtime: float) -> dict[str, Any]:
        """Change the runtime config live (faults.RuntimeConfig: fault_rate, latency_ms,
        processing_delay, ma_accuracy, hang_seconds, forget_uids_after, the scripted faults)."""
        response = requests.post(f"{self.source_api}/_sandbox/config", json=runtime, timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def verification_code(self, instance: str, username: str) -> str | None:
        """The last two-factor login code the instance "emailed" to `username`, if any."""
        response = requests.get(f"{self.api(instance)}/_sandbox/outbox", timeout=10)
        response.raise_for_status()
        code = response.json()["verification_codes"].get(username)
        return None if code is None else str(code)

    def new_target_store(self) -> int:
        """A fresh empty target store with the template store's POGs, for an isolated copy."""
        response = requests.post(f"{self.target_api}/_sandbox/stores", timeout=10)
        response.raise_for_status()
        return int(response.json()["id"])

    def rename_section(self, section_id: int, name: str, instance: str = "source") -> None:
        """Rename a section (and its reports' section_name): for hostile-name tests."""
        url = self.source_api if instance == "source" else self.target_api
        response = requests.post(f"{url}/_sandbox/sections/{section_id}", json={"name": name}, timeout=10)
        response.raise_for_status()

    def db(self, instance: str) -> dict[str, Any]:
        """The psycopg connection keywords of one instance (read-only user)."""
        return dict(self.info["instances"][instance]["db"])

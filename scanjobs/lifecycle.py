"""Runs a job: lock, state, signals, the mode's plan then execute, exit code and summary."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from scanjobs.errors import ExitCode
from scanjobs.events import EventBus, Events, LogSink
from scanjobs.jobfile import Job
from scanjobs.state import RunLock, StatePaths, StateStore

__all__ = [
    "RunOptions",
    "RunContext",
    "RunResult",
    "Mode",
    "StopSignal",
    "run_job",
    "plan_job",
    "mode_for",
    "open_state_readonly",
    "restart_state",
]


@dataclass(frozen=True, slots=True)
class RunOptions:
    restart: bool = False
    retry_failed: bool = False
    limit: int | None = None


class StopSignal:
    """First Ctrl-C (or SIGTERM): finish in-flight items, save, exit 130. Second: abort now."""

    def __init__(self, events: Events | None = None) -> None:
        self._event = threading.Event()
        self.events = events
        self.reason: str | None = None

    def request(self, reason: str = "interrupted") -> None:
        self.reason = self.reason or reason
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` unless a stop is requested (True if it was)."""
        return self._event.wait(timeout)

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self._event.is_set() and self.reason == "interrupted":
            sys.stderr.write("\nsecond interrupt: aborting now (finished work is saved)\n")
            sys.stderr.flush()
            os._exit(int(ExitCode.INTERRUPTED))
        self.request("interrupted")
        if self.events:
            self.events.emit(
                "warning",
                message="interrupted: finishing the items in flight and saving (press Ctrl-C again to abort)",
            )

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopSignal]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@dataclass
class RunResult:
    """What one execution did; the exit code follows from it."""

    done: int = 0
    failed: int = 0
    already_done: int = 0
    failures_by_class: dict[str, int] = field(default_factory=dict)
    threshold_stop: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    job: Job
    state: StateStore
    events: Events
    options: RunOptions
    stop: StopSignal


class Mode(Protocol):
    def plan(self, job: Job, state: StateStore | None, events: Events) -> dict[str, Any]: ...
    def execute(self, ctx: RunContext) -> RunResult: ...


_MODES = {
    "copy": "scanjobs.modes.copy",
    "download": "scanjobs.modes.download",
    "analyze": "scanjobs.modes.analyze",
}


def mode_for(job: Job) -> Mode:
    module = importlib.import_module(_MODES[job.mode])
    mode: Mode = module.MODE
    return mode


def restart_state(job: Job) -> Path | None:
    """Move the job's state aside (kept as a backup, never replacing one); return the backup path."""
    return StatePaths(job.state_path).move_aside()


def open_state_readonly(job: Job) -> StateStore:
    return StateStore.open(job.state_path, create=False)


def _exit_code(result: RunResult, stop: StopSignal) -> ExitCode:
    if stop.requested and stop.reason == "interrupted":
        return ExitCode.INTERRUPTED
    if result.failed or result.threshold_stop:
        return ExitCode.PARTIAL
    return ExitCode.OK


def run_job(job: Job, options: RunOptions, events: EventBus) -> ExitCode:
    """`scanjobs run`: the whole lifecycle of one run of one job."""
    job.state_path.parent.mkdir(parents=True, exist_ok=True)
    with RunLock(job.state_path.with_suffix(".lock")) as lock:
        log = LogSink(job.log_path)
        events.add(log)
        if lock.took_over:
            events.emit(
                "warning",
                message=f"took over the lock of a run that is gone (pid "
                f"{lock.took_over.get('pid')} on {lock.took_over.get('host')})",
            )
        if options.restart:
            backup = restart_state(job)
            if backup:
                events.emit("info", message=f"--restart: previous state kept as {backup}")
        state = StateStore.open(
            job.state_path, fingerprint=job.fingerprint(), fingerprint_fields=job.fingerprint_fields()
        )
        run_id = state.start_run()
        stop = StopSignal(events)
        started = time.monotonic()
        code = ExitCode.INTERNAL
        result = RunResult()
        try:
            with stop.installed():
                result = mode_for(job).execute(RunContext(job, state, events, options, stop))
            code = _exit_code(result, stop)
        finally:
            elapsed = time.monotonic() - started
            summary = {
                "done": result.done,
                "failed": result.failed,
                "already_done": result.already_done,
                "failures_by_class": result.failures_by_class,
                "elapsed": round(elapsed, 2),
                **result.extra,
            }
            state.finish_run(run_id, int(code), summary)
            state.close()
            events.emit("run_finished", exit_code=int(code), status=code.name.lower(), **summary)
    return code


def plan_job(job: Job, events: EventBus) -> dict[str, Any]:
    """`scanjobs plan`: read-only preflight; the mode asks the platform and reads the state."""
    state = None
    if job.state_path.exists():
        state = StateStore.open(job.state_path, create=False)
    try:
        return mode_for(job).plan(job, state, events)
    finally:
        if state is not None:
            state.close()

"""What a mode is given and gives back: the run's context, its result, the stop signal, the plan report.

Modes import this; the lifecycle (one run of one job) and the CLI import the modes, never the
other way round (an import-linter contract in pyproject.toml holds it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Protocol

from scanjobs.errors import PERMANENT_FAILURES, ExitCode
from scanjobs.events import Events
from scanjobs.jobfile import Job
from scanjobs.state import StateStore

__all__ = ["RunOptions", "StopSignal", "RunResult", "RunContext", "PlanReport", "Mode"]


@dataclass(frozen=True, slots=True)
class RunOptions:
    restart: bool = False
    retry_failed: bool = False
    limit: int | None = None
    accept_permanent: bool = False  # permanent failures alone do not fail the run (exit 0)
    reanalyze: bool = False  # only the analysis, from the platform's current data; nothing copied


class StopSignal:
    """First Ctrl-C (or SIGTERM): finish in-flight items, save, exit 130. Second: abort now."""

    def __init__(self, events: Events | None = None) -> None:
        self._event = threading.Event()
        self.events = events
        self.reason: str | None = None
        self._interrupts = 0

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
        self._interrupts += 1
        if self._interrupts > 1:
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
    gate_breached: bool = False  # the job's quality gate judged the report and it failed: exit 6
    gate_text: str | None = None  # the gate's verdict line, for the run's notification
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def permanent(self) -> int:
        """How many of the failures are permanent ones (not found, no files, refused...)."""
        return sum(n for name, n in self.failures_by_class.items() if name in PERMANENT_FAILURES)

    def count_failure(self, error_class: str | None, n: int = 1) -> None:
        name = error_class or "Error"
        self.failed += n
        self.failures_by_class[name] = self.failures_by_class.get(name, 0) + n


@dataclass
class RunContext:
    job: Job
    state: StateStore
    events: Events
    options: RunOptions
    stop: StopSignal


@dataclass
class PlanReport:
    """What `scanjobs plan` found: a line per check or fact, the facts, and the exit code a run
    would end with.

    A run stops at its first failed check, in the order the checks are added (the order a run
    makes them): that one's exit code and reason are the verdict, whatever follows. Items a run
    would fail (PARTIAL) make exit 1 unless a check stops it.
    """

    job: str
    mode: str
    lines: list[str]
    facts: dict[str, Any] = field(default_factory=dict)
    exit_code: ExitCode = ExitCode.OK
    stop: str | None = None  # why a run would stop, when it would
    would: str | None = None  # what a run would do, when it would go on

    @property
    def ok(self) -> bool:
        return self.exit_code == ExitCode.OK

    def worsen(self, code: ExitCode, reason: str | None = None) -> None:
        """A check's outcome: PARTIAL (items would fail) or a code that stops a run at once."""
        if self.stop is not None or code == ExitCode.OK:
            return
        if code == ExitCode.PARTIAL:
            self.exit_code = ExitCode.PARTIAL
            return
        self.exit_code = code
        self.stop = reason or code.name.lower()

    def verdict(self) -> str:
        """The one line that ends the plan: what a run would do, or why it would not."""
        if self.stop is not None:
            return f"verdict: a run would stop: {self.stop} (exit {int(self.exit_code)})"
        tail = " (exit 1: some items would fail)" if self.exit_code == ExitCode.PARTIAL else " (exit 0)"
        return f"verdict: {self.would or 'a run would do nothing'}{tail}"

    def as_dict(self) -> dict[str, Any]:
        """The `plan --json` document (its keys are part of the --json contract)."""
        return {
            "job": self.job,
            "mode": self.mode,
            "ok": self.ok,
            "exit_code": int(self.exit_code),
            "verdict": self.verdict(),
            "facts": self.facts,
            "lines": self.lines,
        }


class Mode(Protocol):
    """A job mode: a read-only plan, and one execution of a run."""

    def plan(self, job: Job, state: StateStore | None, events: Events) -> PlanReport: ...

    def execute(self, ctx: RunContext) -> RunResult: ...

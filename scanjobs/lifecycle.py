"""Runs a job: lock, state, signals, the mode's plan then execute, exit code and summary."""

from __future__ import annotations

import time
from pathlib import Path

from scanjobs.errors import ExitCode, ScanjobsError
from scanjobs.events import EventBus, LogSink
from scanjobs.jobfile import Job
from scanjobs.modes import mode_for
from scanjobs.modes.base import PlanReport, RunContext, RunOptions, RunResult, StopSignal
from scanjobs.ownership import claim_output
from scanjobs.state import RunLock, StatePaths, StateStore

__all__ = ["RunOptions", "run_job", "plan_job", "open_state_readonly", "restart_state"]


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
    with RunLock(StatePaths(job.state_path).lock) as lock:
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
            claim_output(job, state)  # before the mode writes anything into the folder
            with stop.installed():
                result = mode_for(job).execute(RunContext(job, state, events, options, stop))
            code = _exit_code(result, stop)
        except ScanjobsError as exc:
            code = exc.exit_code  # what the process exits with, recorded as such (not "internal")
            raise
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


def plan_job(job: Job, events: EventBus) -> PlanReport:
    """`scanjobs plan`: read-only preflight; the mode asks the platform and reads the state."""
    state = None
    if job.state_path.exists():
        state = StateStore.open(job.state_path, create=False)
    try:
        return mode_for(job).plan(job, state, events)
    finally:
        if state is not None:
            state.close()

"""Runs a job: lock, state, signals, the mode's plan then execute, exit code and summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from scanjobs.errors import ExitCode, LockedError, ScanjobsError, StateError
from scanjobs.events import EventBus, LogSink
from scanjobs.jobfile import Job
from scanjobs.modes import mode_for
from scanjobs.modes.base import PlanReport, RunContext, RunOptions, RunResult, StopSignal
from scanjobs.notify import RunEnd, SummaryKeeper, announce, unusable_targets
from scanjobs.ownership import claim_output, refusal_of
from scanjobs.state import RunLock, StatePaths, StateStore

__all__ = ["RunOptions", "error_fields", "run_job", "plan_job", "restart_state"]


def restart_state(job: Job) -> Path | None:
    """Move the job's state aside (kept as a backup, never replacing one); return the backup path."""
    return StatePaths(job.state_path).move_aside()


def _exit_code(result: RunResult, stop: StopSignal, options: RunOptions) -> ExitCode:
    if stop.requested and stop.reason == "interrupted":
        return ExitCode.INTERRUPTED
    if result.threshold_stop:
        return ExitCode.PARTIAL
    if result.failed and not (options.accept_permanent and result.permanent == result.failed):
        return ExitCode.PARTIAL
    if result.gate_breached:  # after failures: a gate judges a report of whatever was done
        return ExitCode.GATE
    return ExitCode.OK


def error_fields(exc: ScanjobsError) -> dict[str, Any]:
    """The `error` event of an expected error."""
    fields: dict[str, Any] = {
        "exit_code": int(exc.exit_code),
        "status": exc.exit_code.name.lower(),
        "message": exc.message,
    }
    if exc.hint:
        fields["hint"] = exc.hint
    return fields


def run_job(job: Job, options: RunOptions, events: EventBus) -> ExitCode:
    """`scanjobs run`: the whole lifecycle of one run of one job.

    Its events: `run_started` first (once the lock is taken), `run_finished` last, an `error`
    before it when an expected error ends the run; a lock held by another run is one `error`.
    """
    job.state_path.parent.mkdir(parents=True, exist_ok=True)
    lock = RunLock(StatePaths(job.state_path).lock)
    try:
        lock.acquire()
    except ScanjobsError as exc:
        events.emit("error", **error_fields(exc))
        raise
    try:
        return _run_locked(job, options, events, lock)
    finally:
        lock.release()


def _run_locked(job: Job, options: RunOptions, events: EventBus, lock: RunLock) -> ExitCode:
    log = LogSink(job.log_path)
    events.add(log)
    events.emit("run_started", job=job.name, mode=job.mode, file=str(job.path))
    started = time.monotonic()
    code = ExitCode.INTERNAL
    result = RunResult()
    state: StateStore | None = None
    run_id = 0
    summary_text = SummaryKeeper()
    events.add(summary_text)
    stopped_by: str | None = None  # why the run ended before its summary, for its notification
    try:
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
        claim_output(job, state)  # before the mode writes anything into the folder
        with stop.installed():
            result = mode_for(job).execute(RunContext(job, state, events, options, stop))
        code = _exit_code(result, stop, options)
    except ScanjobsError as exc:
        code = exc.exit_code  # what the process exits with, recorded as such (not "internal")
        stopped_by = exc.message
        events.emit("error", **error_fields(exc))
        raise
    except Exception:
        stopped_by = f"an internal error (its traceback is in {job.log_path})"
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
        if state is not None:
            try:
                if run_id:
                    state.finish_run(run_id, int(code), summary)
            except StateError as exc:  # the state that failed the run cannot record its end either
                events.emit("warning", message=f"the run's end is not recorded: {exc.message}")
            state.close()
        if job.notify:
            text = f"stopped by {stopped_by}" if stopped_by else summary_text.text
            end = RunEnd(job.name, job.mode, int(code), code.name.lower(), text, result.gate_text)
            announce(job.notify, end, events, [s for i in job.instances() for s in i.secrets()])
        events.emit("run_finished", exit_code=int(code), status=code.name.lower(), **summary)
    return code


def plan_job(job: Job, events: EventBus) -> PlanReport:
    """`scanjobs plan`: read-only preflight, checking what a run checks in the order it does
    (the lock, the state and the job's fingerprint, then the mode's own checks), ending with
    the verdict a run would reach."""
    paths = StatePaths(job.state_path)
    first: list[tuple[str, ScanjobsError]] = []  # (check, refusal) before the mode's own checks
    holder = RunLock(paths.lock).running()
    if holder is not None:  # {} when the holder's details cannot be read: held all the same
        pid = holder.get("pid", "unknown")
        first.append(("run lock", LockedError(f"another run of this job is going: pid {pid}")))
    state = None
    if paths.db.exists():
        try:
            state = StateStore.open(job.state_path, create=False)
        except StateError as exc:
            first.append(("state", exc))
    if state is not None:
        refusal = state.refusal_of(job.fingerprint(), job.fingerprint_fields())
        if refusal is not None:
            first.append(("state", refusal))
    if not first:  # a run claims its output folder once its state is open
        output_refusal = refusal_of(job, state)
        if output_refusal is not None:
            first.append(("output", output_refusal))
    try:
        report = mode_for(job).plan(job, state, events)
    finally:
        if state is not None:
            state.close()
    checks = [f"  FAIL {label}: {refused.message}" for label, refused in first]
    if first:  # a run meets these before anything the mode checks: the first one is its verdict
        label, refused = first[0]
        report.stop, report.exit_code = f"{label}: {refused.message}", refused.exit_code
    else:
        checks.append(f"  ok   state: {'resumes ' + str(paths.db) if state else 'none yet'}")
    report.lines[1:1] = checks
    if job.notify:  # a target apprise cannot use is a warning of the run, never its verdict
        unusable = unusable_targets(job.notify)
        usable = [t.describe() for t in job.notify if t not in unusable]
        if usable:
            report.lines.append(f"  ok   notify: {', '.join(usable)}")
        report.lines += [
            f"  warn notify: apprise cannot use {t.describe()}: a run would end without it" for t in unusable
        ]
    report.lines.append(report.verdict())
    return report

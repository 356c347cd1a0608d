"""Compare mode: two analyses of the same source scans, row by row (no platform access).

sides.py finds each side's analysis; run.py compares and reports; preflight.py is `scanjobs plan`.
The rules themselves are pure (`report/compare.py`).
"""

from __future__ import annotations

from scanjobs.events import Events
from scanjobs.jobfile.model import CompareJob, Job
from scanjobs.modes.base import PlanReport, RunContext, RunResult
from scanjobs.modes.compare.preflight import preflight_compare
from scanjobs.modes.compare.run import CompareRun
from scanjobs.state import StateStore

__all__ = ["CompareMode"]


def _compare_job(job: Job) -> CompareJob:
    if not isinstance(job, CompareJob):
        raise TypeError(f"compare mode got a {job.mode} job")
    return job


class CompareMode:
    def plan(self, job: Job, state: StateStore | None, events: Events) -> PlanReport:
        return preflight_compare(_compare_job(job))

    def execute(self, ctx: RunContext) -> RunResult:
        return CompareRun(ctx, _compare_job(ctx.job)).run()

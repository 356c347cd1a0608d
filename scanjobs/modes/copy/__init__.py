"""Copy mode: source scans flow download -> upload -> create, each on its own, resumable, no duplicates.

plan.py decides (pure), adoption.py finds uploads a killed run did not record, mover.py moves
each file once, pipeline.py copies the scans, payload.py builds the create's payload, run.py
strings the steps of one run together, preflight.py is `scanjobs plan`.
"""

from __future__ import annotations

from scanjobs.events import Events
from scanjobs.jobfile.model import CopyJob, Job
from scanjobs.modes.base import PlanReport, RunContext, RunResult
from scanjobs.modes.copy.preflight import preflight_copy
from scanjobs.modes.copy.run import FAILURES_CSV, MAPPING_CSV, CopyRun
from scanjobs.state import StateStore

__all__ = ["CopyMode", "MAPPING_CSV", "FAILURES_CSV"]


def _copy_job(job: Job) -> CopyJob:
    if not isinstance(job, CopyJob):
        raise TypeError(f"copy mode got a {job.mode} job")
    return job


class CopyMode:
    def plan(self, job: Job, state: StateStore | None, events: Events) -> PlanReport:
        return preflight_copy(_copy_job(job), state, events)

    def execute(self, ctx: RunContext) -> RunResult:
        return CopyRun(ctx, _copy_job(ctx.job)).run()

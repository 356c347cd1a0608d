"""Analyze mode: compare source and target scans pair by pair (also the last step of a copy job).

run.py waits for processing, compares and writes the reports; preflight.py is `scanjobs plan`.
"""

from __future__ import annotations

from scanjobs.events import Events
from scanjobs.jobfile.model import AnalyzeJob, Job
from scanjobs.modes.analyze.preflight import preflight_analyze
from scanjobs.modes.analyze.run import AnalyzeRun, job_pairs
from scanjobs.modes.base import PlanReport, RunContext, RunResult
from scanjobs.state import StateStore

__all__ = ["AnalyzeMode"]


def _analyze_job(job: Job) -> AnalyzeJob:
    if not isinstance(job, AnalyzeJob):
        raise TypeError(f"analyze mode got a {job.mode} job")
    return job


class AnalyzeMode:
    def plan(self, job: Job, state: StateStore | None, events: Events) -> PlanReport:
        analyze_job = _analyze_job(job)
        return preflight_analyze(analyze_job, job_pairs(analyze_job))

    def execute(self, ctx: RunContext) -> RunResult:
        return AnalyzeRun(ctx, _analyze_job(ctx.job)).run()

"""Download mode: every file of the selected scans, meaningfully named, streamed, resumable.

naming.py names the files (pure), run.py is one run, preflight.py is `scanjobs plan`.
"""

from __future__ import annotations

from scanjobs.events import Events
from scanjobs.jobfile.model import DownloadJob, Job
from scanjobs.modes.base import PlanReport, RunContext, RunResult
from scanjobs.modes.download.preflight import preflight_download
from scanjobs.modes.download.run import FAILURES_CSV, MANIFEST_CSV, PART_PREFIX, DownloadRun
from scanjobs.state import StateStore

__all__ = ["DownloadMode", "MANIFEST_CSV", "FAILURES_CSV", "PART_PREFIX"]


def _download_job(job: Job) -> DownloadJob:
    if not isinstance(job, DownloadJob):
        raise TypeError(f"download mode got a {job.mode} job")
    return job


class DownloadMode:
    def plan(self, job: Job, state: StateStore | None, events: Events) -> PlanReport:
        return preflight_download(_download_job(job), state, events)

    def execute(self, ctx: RunContext) -> RunResult:
        return DownloadRun(ctx, _download_job(ctx.job)).run()

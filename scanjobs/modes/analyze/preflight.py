"""`scanjobs plan` for an analyze job: the pairs, both databases, how many targets are processed."""

from __future__ import annotations

from collections.abc import Sequence

from scanjobs.jobfile.model import AnalyzeJob
from scanjobs.modes.base import PlanReport
from scanjobs.modes.preflight import Preflight
from scanjobs.modes.reads import job_reads

__all__ = ["preflight_analyze"]


def preflight_analyze(job: AnalyzeJob, pairs: Sequence[tuple[int, int | None]]) -> PlanReport:
    pf = Preflight(job)
    copied = [t for _, t in pairs if t is not None]
    pf.note(f"{len(pairs)} pair(s), {len(copied)} with a target scan")
    source_reads, target_reads = job_reads(job)
    db = pf.database(source_reads)
    if db is not None:
        db.close()
    target_db = pf.database(target_reads)
    if target_db is not None:
        status = target_db.processing_status(copied)
        finished = sum(1 for s in status.values() if s.finished)
        failed = sum(1 for s in status.values() if s.failed)
        reportless = sum(1 for s in status.values() if s.processed and s.report_count == 0)
        pf.note(
            f"{finished} of {len(copied)} target scan(s) processed so far"
            f" ({failed} failed, {reportless} done without a report)"
        )
        target_db.close()
    pf.report.would = f"a run would compare {len(pairs)} pair(s) and write the reports into {job.output}"
    return pf.report

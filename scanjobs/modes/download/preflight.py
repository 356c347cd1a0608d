"""`scanjobs plan` for a download job: login, the scans and their files, what is on disk already."""

from __future__ import annotations

from scanjobs.events import Events
from scanjobs.jobfile.model import DownloadJob
from scanjobs.modes.base import PlanReport
from scanjobs.modes.preflight import Preflight
from scanjobs.modes.reads import job_reads
from scanjobs.state import ItemKind, StateStore, Status

__all__ = ["preflight_download"]


def preflight_download(job: DownloadJob, state: StateStore | None, events: Events) -> PlanReport:
    pf = Preflight(job)
    pf.login(job.source, events)
    (reads,) = job_reads(job)
    db = pf.database(reads)
    selected = pf.select(db, state) if db is not None else []
    counts = pf.state_counts(state, ItemKind.IMAGE)
    if db is not None:
        # what a run reads to name the files: its download_info, not the copy's query
        info = db.download_info(selected)
        pf.files({scan_id: info[scan_id].files for scan_id in selected if scan_id in info})
        db.close()
        pf.report.would = (
            f"a run would download the files of {len(selected)} scan(s) into {job.output} "
            f"({counts.get(Status.DONE, 0)} file(s) already there)"
        )
    return pf.report

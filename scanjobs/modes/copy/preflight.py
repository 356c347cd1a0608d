"""`scanjobs plan` for a copy job: both logins, both databases, the target store, the state, the work."""

from __future__ import annotations

from scanjobs.errors import ExitCode
from scanjobs.events import Events
from scanjobs.jobfile.model import CopyJob
from scanjobs.modes.base import PlanReport
from scanjobs.modes.copy.adoption import UNSETTLED, unsettled_uploads
from scanjobs.modes.copy.plan import batch_size_for, plan_copy, scans_in_flight_needed
from scanjobs.modes.preflight import Preflight
from scanjobs.modes.reads import ADOPTION, job_reads
from scanjobs.state import ItemKind, StateStore, Status

__all__ = ["preflight_copy"]


def preflight_copy(job: CopyJob, state: StateStore | None, events: Events) -> PlanReport:
    pf = Preflight(job)
    pf.login(job.source, events)
    pf.login(job.target.instance, events)
    # in a run's order: both databases and what they hold, the target store, the selection
    source_reads, target_reads = job_reads(job)
    db = pf.database(source_reads)
    target = job.target
    target_db = pf.database(target_reads)
    if target_db is not None:
        exists = target_db.store_exists(target.store)
        where = f"on {target.instance.name}"
        label = f"target store {target.store} {'exists' if exists else 'does not exist'} {where}"
        pf.verdict(exists, label)
        if not exists:
            pf.worsen(ExitCode.INVALID, label)
        target_db.close()
    # as a run reads them: whole records only of the scans not done (see CopyRun.plan)
    done = state.source_ids(ItemKind.SCAN, Status.DONE) if state else set()
    selected = pf.select(db, state, known=done) if db is not None else []
    unfinished = (
        state.items(ItemKind.SCAN, status=(Status.PENDING, Status.RUNNING, Status.FAILED)) if state else []
    )
    records = {r.key: r for r in unfinished}
    pf.state_counts(state, ItemKind.SCAN)
    unsettled = unsettled_uploads(state.items(ItemKind.FILE, status=UNSETTLED)) if state else []
    if unsettled:
        columns = pf.columns.get("target")
        pf.note(
            f"{len(unsettled)} upload(s) of an earlier run were sent but not recorded: "
            + (
                "a run looks for them in the target store before uploading them again"
                if columns is None or columns.available(ADOPTION)
                else "a run uploads them again (upload adoption is off, see above)"
            )
        )
    creates = [r for r in records.values() if r.request_uid and not r.target_id and r.status != Status.DONE]
    if creates:
        pf.note(
            f"{len(creates)} create(s) of an earlier run may have been sent but not recorded: a run "
            "looks for a target scan made of their files before sending them again (with their uid)"
        )
    if db is not None:
        plan = plan_copy(selected, records, done_ids=done)
        todo = list(plan.todo)
        pf.files({s.id: s.files for s in db.scans_with_files(todo)}, of="the scans to copy")
        db.close()
        if todo:
            per_scan = pf.facts["files"] / len(todo)
            needed = scans_in_flight_needed(job.batch.workers, per_scan)
            in_flight = batch_size_for(job.batch, per_scan)
            pf.facts["in_flight"] = in_flight
            if job.batch.size is None:
                pf.note(
                    f"{in_flight} scans in flight (batch.size by default: with {per_scan:.1f} file(s) "
                    f"a scan, {needed} keep the workers busy, twice that absorbs uneven latencies)"
                )
            elif job.batch.size < needed:
                pf.note(
                    f"batch.size {job.batch.size} keeps fewer scans in flight than the workers can "
                    f"serve: with {per_scan:.1f} file(s) a scan, {needed} keep them busy; at "
                    f"{job.batch.size} the copy runs at most {job.batch.size / needed:.0%} as fast"
                    " (leave batch.size out to get what keeps them busy)"
                )
        pf.facts.update(
            todo=len(plan.todo),
            already_done=len(plan.already_done),
            resume=len(plan.resume),
            retry=len(plan.retry),
            final=len(plan.final),
        )
        final = f", {len(plan.final)} failed for good" if plan.final else ""
        pf.report.would = (
            f"a run would copy {len(plan.todo)} scan(s) (resume {len(plan.resume)}, retry "
            f"{len(plan.retry)}, new {len(plan.new)}); {len(plan.already_done)} already done{final}; "
            f"strategy {job.copy.strategy}, into store {target.store} of "
            f"{target.instance.name}; then " + ("analysis" if job.analysis.enabled else "no analysis")
        )
    return pf.report

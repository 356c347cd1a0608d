"""The analysis (of analyze jobs, and the last step of copy jobs): wait for processing, compare, report."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scanjobs.errors import JobError, StateError
from scanjobs.events import Events
from scanjobs.fsutil import sha256_of
from scanjobs.jobfile import load_job
from scanjobs.jobfile.model import AnalyzeJob, CopyJob
from scanjobs.jobfile.scanlist import read_pairs_csv
from scanjobs.modes.base import RunContext, RunResult, StopSignal
from scanjobs.modes.gate import apply_analysis_gate
from scanjobs.modes.reads import job_reads, require_columns
from scanjobs.modes.resources import Stopwatch, open_db
from scanjobs.platform.db import PlatformDB, ScanProcessing
from scanjobs.state import ItemKind, StateStore, Status

__all__ = [
    "AnalyzeRun",
    "analyze_pairs",
    "analyze_copy_job",
    "read_pairs_csv",
    "pairs_from_state",
    "wait_for_processing",
    "job_pairs",
]

Pair = tuple[int, "int | None"]


def pairs_from_state(state: StateStore) -> list[tuple[int, int | None]]:
    """Every scan of a copy job in selection order: done -> its target, otherwise None."""
    return [
        (int(source or key), target if status == Status.DONE else None)
        for key, source, target, status in state.outcomes(ItemKind.SCAN)
    ]


def wait_for_processing(
    target_db: PlatformDB, target_ids: Sequence[int], timeout: float, events: Events, stop: StopSignal
) -> dict[int, ScanProcessing]:
    """Poll (with backoff, up to `timeout`) until every target scan is finished (done, error or
    interrupted: a failed scan will not come right by waiting); the finished ones' final state."""
    clock = Stopwatch()
    delay = 1.0
    wanted = set(target_ids)
    finished: dict[int, ScanProcessing] = {}
    while True:
        status = target_db.processing_status(sorted(wanted - set(finished)))
        finished.update((scan_id, s) for scan_id, s in status.items() if s.finished)
        # "processed" counts the finished scans, failed ones included: processing is over for them
        events.emit("waiting", processed=len(finished), total=len(wanted), elapsed=round(clock.elapsed, 1))
        remaining = timeout - clock.elapsed
        if len(finished) >= len(wanted) or remaining <= 0 or stop.requested:
            break
        stop.wait(min(delay, remaining))
        delay = min(delay * 1.5, 15.0)
    missing = len(wanted - set(finished))
    if missing:
        events.emit(
            "warning",
            message=f"{missing} target scan(s) not processed after "
            f"{clock.elapsed:.0f}s: reported as 'Target Not Processed' (rerun later to analyse them)",
        )
    failed = sorted({s.status for s in finished.values() if s.failed})
    if failed:
        count = sum(1 for s in finished.values() if s.failed)
        events.emit(
            "warning",
            message=f"{count} target scan(s) ended in {' or '.join(failed)}: reported as "
            "'Target Processing Failed (<status>)'",
        )
    reportless = sum(1 for s in finished.values() if s.processed and s.report_count == 0)
    if reportless:
        events.emit(
            "warning",
            message=f"{reportless} target scan(s) done without a report: reported as 'Target Report Missing'",
        )
    return finished


def analyze_pairs(
    job: CopyJob | AnalyzeJob,
    events: Events,
    stop: StopSignal,
    pairs: Sequence[tuple[int, int | None]],
    source_db: PlatformDB,
    target_db: PlatformDB,
) -> dict[str, Any]:
    """Compare the pairs and write the reports under job.output; the comment counts and paths."""
    # here, not at the top: the reports need pandas and openpyxl, which copy and download jobs
    # without analysis would load for nothing (half a second of start-up)
    from scanjobs.report import summary_counts, write_reports
    from scanjobs.report.rules import build_analysis

    # ids an instance does not have are said at once, not waited for nor read as report-less
    unknown_sources = source_db.missing_scan_ids([s for s, _ in pairs])
    unknown_targets = target_db.missing_scan_ids([t for _, t in pairs if t is not None])
    for ids, instance in ((unknown_sources, job.source), (unknown_targets, job.target.instance)):
        if ids:
            shown = ", ".join(map(str, ids[:20])) + (", ..." if len(ids) > 20 else "")
            events.emit(
                "warning",
                message=f"{len(ids)} scan id(s) of the pairs do not exist on {instance.name}: {shown}",
            )
    absent = set(unknown_targets)
    target_ids = [t for _, t in pairs if t is not None and t not in absent]
    finished = wait_for_processing(target_db, target_ids, job.analysis.wait_for_processing, events, stop)
    processed = {scan_id for scan_id, s in finished.items() if s.processed}
    failed = {scan_id: s.status for scan_id, s in finished.items() if s.failed}
    source_details = source_db.scan_details([s for s, _ in pairs])
    target_details = target_db.scan_details(sorted(processed))
    analysis = build_analysis(
        source_details,
        target_details,
        list(pairs),
        processed,
        unknown_sources,
        unknown_targets,
        failed_targets=failed,
    )
    paths = write_reports(job.output, source_details, target_details, analysis)
    counts = summary_counts(analysis)
    for what, path in (
        ("source details", paths.source_details),
        ("target details", paths.target_details),
        ("analysis CSV", paths.analysis_csv),
        ("Excel report", paths.analysis_xlsx),
    ):
        events.emit("output", what=what, path=str(path))
    text = "analysis: " + ", ".join(f"{n} {c}" for c, n in counts.items() if n)
    events.emit("summary", text=text, comments=counts, rows=len(analysis))
    return {
        "comments": counts,
        "unprocessed": len(set(target_ids) - set(finished)),
        "excel": str(paths.analysis_xlsx),
    }


def _signature(pairs: Sequence[tuple[int, int | None]]) -> str:
    return hashlib.sha256(json.dumps(list(pairs)).encode()).hexdigest()[:24]


def _analysed(signature: str, report: Path) -> str | None:
    """What `analysis_complete` records: the pairs' signature and the digest of the report
    written for them (None without a report), so that a report written over by another job
    is never taken for this job's."""
    try:
        digest = sha256_of(report)
    except OSError:
        return None
    return f"{signature}:{digest[:24]}"


def analyze_copy_job(
    job: CopyJob,
    state: StateStore,
    events: Events,
    stop: StopSignal,
    source_db: PlatformDB,
    target_db: PlatformDB,
) -> dict[str, Any] | None:
    """The analysis step of a copy job; skipped when the same pairs were fully analysed before."""
    pairs = pairs_from_state(state)
    if not pairs:
        return None
    signature = _signature(pairs)
    report = job.output / "analysis_with_comments.xlsx"
    done = state.meta("analysis_complete")
    if done is not None and done == _analysed(signature, report):
        events.emit("info", message=f"analysis up to date: {report}")
        return None
    result = analyze_pairs(job, events, stop, pairs, source_db, target_db)
    analysed = _analysed(signature, report)
    if result["unprocessed"] == 0 and analysed is not None:
        state.set_meta("analysis_complete", analysed)
    return result


def job_pairs(job: AnalyzeJob) -> list[tuple[int, int | None]]:
    """The pairs an analyze job compares: its pairs CSV, or what its copy job recorded."""
    assert job.scans.file is not None  # the loader requires it for both kinds
    if job.scans.kind == "pairs":
        return read_pairs_csv(job.scans.file)
    copy_job = load_job(job.scans.file)
    if not isinstance(copy_job, CopyJob):
        raise JobError(f"scans.from_job: {job.scans.file} is a {copy_job.mode} job, not a copy job")
    try:
        store = StateStore.open(copy_job.state_path, create=False)
    except StateError as exc:
        raise JobError(f"scans.from_job: {exc}") from None
    try:
        pairs = pairs_from_state(store)
    finally:
        store.close()
    if not pairs:
        raise JobError(f"scans.from_job: {job.scans.file} has not copied any scan yet")
    return pairs


class AnalyzeRun:
    """One execution of an analyze job."""

    def __init__(self, ctx: RunContext, job: AnalyzeJob) -> None:
        self.ctx, self.job = ctx, job

    def run(self) -> RunResult:
        job, events = self.job, self.ctx.events
        pairs = job_pairs(job)
        events.emit(
            "run_started", job=job.name, mode="analyze", total=len(pairs), todo=len(pairs), already_done=0
        )
        source_db = open_db(job.source, job)
        try:
            target_db = open_db(job.target.instance, job)
            try:
                source, target = job_reads(job)
                require_columns([(source_db, source), (target_db, target)], "analyze", events)
                outcome = analyze_pairs(job, events, self.ctx.stop, pairs, source_db, target_db)
            finally:
                target_db.close()
        finally:
            source_db.close()
        copied = sum(1 for _, t in pairs if t is not None)
        result = RunResult(
            done=copied, extra={"comments": outcome["comments"], "unprocessed": outcome["unprocessed"]}
        )
        apply_analysis_gate(job, events, result)
        return result

"""The analysis (of analyze jobs, and the last step of copy jobs): wait for processing, compare, report."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanjobs.errors import JobError, StateError
from scanjobs.events import Events
from scanjobs.fsutil import sha256_of
from scanjobs.jobfile import load_job
from scanjobs.jobfile.model import AnalyzeJob, CopyJob
from scanjobs.jobfile.scanlist import read_pairs_csv
from scanjobs.modes.base import RunContext, RunResult, StopSignal
from scanjobs.modes.gate import apply_analysis_gate
from scanjobs.modes.metadata import RunTimes, current_run, report_metadata
from scanjobs.modes.reads import job_reads, require_columns
from scanjobs.modes.resources import Stopwatch, open_db
from scanjobs.platform.db import PlatformDB, ScanProcessing
from scanjobs.state import ItemKind, StateStore, Status

if TYPE_CHECKING:
    from scanjobs.report import AnalysisWriter

__all__ = [
    "AnalyzeRun",
    "analyze_pairs",
    "analyze_copy_job",
    "read_pairs_csv",
    "pairs_from_state",
    "wait_for_processing",
    "job_pairs",
    "analyse_in_batches",
    "ANALYSIS_BATCH",
    "RULES_BATCH",
    "Outcome",
]

Pair = tuple[int, "int | None"]


Outcome = tuple[int, "int | None", Status]


def pairs_from_state(
    state: StateStore, outcomes: Sequence[Outcome] | None = None
) -> list[tuple[int, int | None]]:
    """Every scan of a copy job in selection order: done -> its target, otherwise None.
    `outcomes`: the state's scan outcomes when the caller has read them already."""
    return [
        (source, target if status == Status.DONE else None)
        for source, target, status in (state.outcomes(ItemKind.SCAN) if outcomes is None else outcomes)
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
    *,
    run: RunTimes = (None, None),
    reanalyze: bool = False,
) -> dict[str, Any]:
    """Compare the pairs and write the reports under job.output, with the metadata of `run`
    (its id and start); the comment counts and paths."""
    # here, not at the top: the reports need pandas and XlsxWriter, which copy and download jobs
    # without analysis would load for nothing (half a second of start-up)
    from scanjobs.report import AnalysisWriter, summary_counts
    from scanjobs.report.figures import comment_figures, scan_count

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
    failed = {scan_id: s.status for scan_id, s in finished.items() if s.failed}
    # the targets still in processing (few or none): every other one is processed or failed
    unfinished = {t for t in target_ids if t not in finished}
    del finished, target_ids  # 100k scans' states: memory the comparison needs more
    with AnalysisWriter(job.output) as reports:
        analyse_in_batches(
            pairs, source_db, target_db, unfinished, unknown_sources, unknown_targets, failed, reports
        )
        analysis = reports.summary()  # the columns the figures read, of every row
        scans = scan_count(analysis)
        metadata = report_metadata(
            job,
            run,
            finished_at=time.time(),
            pairs=len(pairs),
            rows=len(analysis),
            scans=scans,
            reanalyze=reanalyze,
        )
        paths = reports.write(metadata)
    counts = summary_counts(analysis)
    for what, path in (
        ("source details", paths.source_details),
        ("target details", paths.target_details),
        ("analysis CSV", paths.analysis_csv),
        ("Excel report", paths.analysis_xlsx),
        ("job metadata", paths.job_json),
    ):
        events.emit("output", what=what, path=str(path))
    figures = [f for f in comment_figures(analysis) if f.scans]
    text = f"analysis: {scans} scan(s), {len(analysis)} row(s); scans per comment: " + ", ".join(
        f"{f.comment.text} {f.scans} ({f.pct_of_scans:g}%)" for f in figures
    )
    events.emit(
        "analysis_summary",
        text=text,
        comments=counts,
        rows=len(analysis),
        scans=scans,
        scans_by_comment={f.comment.text: f.scans for f in figures},
    )
    return {
        "comments": counts,
        "scans": scans,
        "unprocessed": len(unfinished),
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


ANALYSIS_BATCH = 20_000  # pairs whose details are read at a time
RULES_BATCH = 5_000  # pairs compared at a time


def analyse_in_batches(
    pairs: Sequence[tuple[int, int | None]],
    source_db: PlatformDB,
    target_db: PlatformDB,
    unfinished: set[int],
    unknown_sources: Sequence[int],
    unknown_targets: Sequence[int],
    failed: dict[int, str],
    reports: AnalysisWriter,
) -> None:
    """Read the details of the pairs ANALYSIS_BATCH at a time (each query has a fixed cost of a
    second or so: the MA logs of the store planograms), compare them RULES_BATCH at a time (the
    rules' intermediate frames of 20k pairs took 20 MB), and hand both to `reports`, which sets
    them aside on disk: the details and the analysis of 100k pairs took a hundred megabytes.
    A target is processed unless it is `unfinished`, failed or unknown (the set of 100k
    processed targets took 7 MB)."""
    from scanjobs.report.rules import build_analysis

    unread = unfinished | failed.keys() | set(unknown_targets)  # targets whose reports are not read

    def processed(pairs: Sequence[tuple[int, int | None]]) -> set[int]:
        return {t for _, t in pairs if t is not None and t not in unread}

    for start in range(0, max(1, len(pairs)), ANALYSIS_BATCH):
        batch = pairs[start : start + ANALYSIS_BATCH]
        source = source_db.scan_details([s for s, _ in batch])
        target = target_db.scan_details(sorted(processed(batch)))
        reports.add_details(source, target)
        for first in range(0, max(1, len(batch)), RULES_BATCH):
            some = batch[first : first + RULES_BATCH]
            targets = {t for _, t in some if t is not None}
            reports.add_analysis(
                build_analysis(
                    source[source["scan_id"].isin([s for s, _ in some])],
                    target[target["scan_id"].isin(list(targets))],
                    some,
                    processed(some),
                    unknown_sources,
                    unknown_targets,
                    failed_targets={t: failed[t] for t in targets if t in failed},
                )
            )
        del source, target  # before the next batch is read


def analyze_copy_job(
    job: CopyJob,
    state: StateStore,
    events: Events,
    stop: StopSignal,
    source_db: PlatformDB,
    target_db: PlatformDB,
    pairs: Sequence[tuple[int, int | None]] | None = None,
    *,
    reanalyze: bool = False,
) -> dict[str, Any] | None:
    """The analysis step of a copy job; skipped when the same pairs were fully analysed before,
    unless `reanalyze` (`run --reanalyze`: the platform's data may have changed since).
    `pairs`: the job's pairs (`pairs_from_state`) when the caller has them already."""
    pairs = pairs_from_state(state) if pairs is None else pairs
    if not pairs:
        return None
    signature = _signature(pairs)
    report = job.output / "analysis_with_comments.xlsx"
    done = state.meta("analysis_complete")
    if not reanalyze and done is not None and done == _analysed(signature, report):
        events.emit("info", message=f"analysis up to date: {report}")
        return None
    result = analyze_pairs(
        job, events, stop, pairs, source_db, target_db, run=current_run(state), reanalyze=reanalyze
    )
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
        reanalyze = {"reanalyze": True} if self.ctx.options.reanalyze else {}
        events.emit(
            "selected",
            job=job.name,
            mode="analyze",
            total=len(pairs),
            todo=len(pairs),
            already_done=0,
            **reanalyze,
        )
        source_db = open_db(job.source, job)
        try:
            target_db = open_db(job.target.instance, job)
            try:
                source, target = job_reads(job)
                require_columns([(source_db, source), (target_db, target)], "analyze", events)
                outcome = analyze_pairs(
                    job,
                    events,
                    self.ctx.stop,
                    pairs,
                    source_db,
                    target_db,
                    run=current_run(self.ctx.state),
                    reanalyze=self.ctx.options.reanalyze,
                )
            finally:
                target_db.close()
        finally:
            source_db.close()
        copied = sum(1 for _, t in pairs if t is not None)
        result = RunResult(
            done=copied,
            extra={
                "comments": outcome["comments"],
                "scans": outcome["scans"],
                "unprocessed": outcome["unprocessed"],
                **reanalyze,
            },
        )
        apply_analysis_gate(job, events, result)
        return result

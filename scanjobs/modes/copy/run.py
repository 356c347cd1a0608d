"""One run of a copy job, as a sequence of named steps (see CopyRun.run)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

from scanjobs.errors import JobError, NotFoundOnSource, StateError
from scanjobs.jobfile.model import CopyJob
from scanjobs.modes.analyze.run import Outcome, analyze_copy_job, pairs_from_state
from scanjobs.modes.base import RunContext, RunResult
from scanjobs.modes.copy.adoption import adopt_creates, adopt_uploads
from scanjobs.modes.copy.mover import FileMover
from scanjobs.modes.copy.payload import Untranslatable, hint_ids, translate_hints
from scanjobs.modes.copy.pipeline import ScanPipeline, Translation
from scanjobs.modes.copy.plan import UNFINISHED, CopyPlan, batch_size_for, plan_copy, request_uid, upload_uid
from scanjobs.modes.gate import apply_analysis_gate
from scanjobs.modes.outcome import Tally, summary_tail, warn_not_found
from scanjobs.modes.reads import ADOPTION, job_reads, require_columns
from scanjobs.modes.resources import (
    Stopwatch,
    Traffic,
    open_api,
    open_db,
    select_scan_ids,
    selection_day,
    warn_nothing_selected,
    write_csv,
)
from scanjobs.platform.db import PlatformDB, SourceScan
from scanjobs.state import ItemKind, ItemRecord, Status

__all__ = ["CopyRun", "MAPPING_CSV", "FAILURES_CSV"]

MAPPING_CSV = "scan_mapping.csv"
FAILURES_CSV = "failures.csv"


class CopyRun:
    """One execution of a copy job."""

    def __init__(self, ctx: RunContext, job: CopyJob) -> None:
        self.ctx, self.job, self.state, self.events, self.stop = ctx, job, ctx.state, ctx.events, ctx.stop
        self.store = job.target.store
        self.records: dict[str, ItemRecord] = {}
        self.adoption = True  # whether the target can be searched for unrecorded uploads
        self.traffic = Traffic()
        self.copied: set[int] = set()  # scans the state records as copied (done)
        self.tally = Tally(
            0, batch_size=job.batch.size, max_failed_ratio=job.batch.max_failed_ratio, stop=ctx.stop
        )

    def run(self) -> RunResult:
        if self.ctx.options.reanalyze:
            return self.reanalyze()
        clock = Stopwatch()
        with self.databases() as (source_db, target_db):
            self.check_columns(source_db, target_db)
            self.check_target_store(target_db)
            selected, missing = self.select(source_db)
            plan = self.plan(selected, missing)
            result = RunResult(already_done=len(plan.already_done))
            for scan_id in plan.final:  # failed for good in an earlier run: still failures
                result.count_failure(self.records[str(scan_id)].error_class)
            if plan.todo:
                self.copy_scans(plan, source_db, target_db, result)
            self.tally.into(result)
            self.tally.raise_fatal(StateError)  # the outputs come from the state: nothing to write
            if missing:
                result.count_failure(NotFoundOnSource.__name__, len(missing))
            # the pairs alone are kept for the analysis: 100k scans' outcomes are 30 MB
            pairs = pairs_from_state(self.state, self.write_outputs())
            self.tally.raise_fatal()
            self.summarize(result, plan, clock)
            del selected, plan  # 100k scans' ids: memory the analysis needs more
            if self.job.analysis.enabled and not self.stop.requested:
                outcome = analyze_copy_job(
                    self.job, self.state, self.events, self.stop, source_db, target_db, pairs
                )
                _record_analysis(result, outcome)
                apply_analysis_gate(self.job, self.events, result)
        return result

    def reanalyze(self) -> RunResult:
        """`run --reanalyze`: the analysis of the pairs the state recorded, rewritten from the
        platform's current data (the target's processing may have changed since); nothing is
        selected or copied, so a finished job can be reanalysed as often as wanted."""
        pairs = pairs_from_state(self.state)
        copied = sum(1 for _, target in pairs if target is not None)
        if not copied:
            raise JobError(
                f"--reanalyze: copy job '{self.job.name}' has not copied any scan yet",
                hint="run it without --reanalyze first",
            )
        self.events.emit(
            "selected",
            job=self.job.name,
            mode="copy",
            total=len(pairs),
            todo=0,
            already_done=copied,
            reanalyze=True,
        )
        result = RunResult(already_done=copied, extra={"reanalyze": True})
        with self.databases() as (source_db, target_db):
            self.check_columns(source_db, target_db)
            outcome = analyze_copy_job(
                self.job, self.state, self.events, self.stop, source_db, target_db, pairs, reanalyze=True
            )
        _record_analysis(result, outcome)
        apply_analysis_gate(self.job, self.events, result)
        return result

    # -- the steps -----------------------------------------------------------------------
    @contextlib.contextmanager
    def databases(self) -> Iterator[tuple[PlatformDB, PlatformDB]]:
        source_db = open_db(self.job.source, self.job)
        try:
            target_db = open_db(self.job.target.instance, self.job)
        except BaseException:
            source_db.close()
            raise
        try:
            yield source_db, target_db
        finally:
            source_db.close()
            target_db.close()

    def check_columns(self, source_db: PlatformDB, target_db: PlatformDB) -> None:
        """Both databases have what this job reads (else exit 5, before anything is sent)."""
        source, target = job_reads(self.job)
        checks = require_columns([(source_db, source), (target_db, target)], "copy", self.events)
        self.adoption = checks[1].available(ADOPTION)

    def check_target_store(self, target_db: PlatformDB) -> None:
        if not target_db.store_exists(self.store):
            raise JobError(
                f"target store {self.store} does not exist on {self.job.target.instance.name}",
                hint="check target.store in the job file",
            )

    def select(self, source_db: PlatformDB) -> tuple[list[int], list[int]]:
        """The selected scans that exist on the source, and those that do not (recorded as failed)."""
        # a scan copied already existed on the source: only the others are looked for there
        self.copied = copied = self.state.source_ids(ItemKind.SCAN, Status.DONE)
        today = selection_day(self.job.scans, self.state, self.events)
        selected, missing = select_scan_ids(self.job.scans, source_db, today=today, known=copied)
        warn_nothing_selected(self.events, self.job.scans, source_db, today, selected)
        self.state.record_selection(ItemKind.SCAN, [*selected, *missing])  # removed ids leave the reports
        for scan_id in missing:
            self.state.mark_failed(
                ItemKind.SCAN,
                str(scan_id),
                "select",
                NotFoundOnSource(f"scan {scan_id} does not exist on {self.job.source.name}"),
            )
        warn_not_found(self.events, missing, self.job.source.name)
        return selected, missing

    def plan(self, selected: list[int], missing: list[int]) -> CopyPlan:
        # whole records only of the scans not done: a finished 100k-scan job has none to build
        done, self.copied = self.copied, set()  # read by `select`; not needed after the plan
        unfinished = self.state.items(ItemKind.SCAN, status=UNFINISHED)
        self.records = records = {r.key: r for r in unfinished}
        options = self.ctx.options
        plan = plan_copy(
            selected, records, done_ids=done, limit=options.limit, retry_failed_only=options.retry_failed
        )
        self.events.emit(
            "selected",
            job=self.job.name,
            mode="copy",
            total=len(selected) + len(missing),
            todo=len(plan.todo),
            already_done=len(plan.already_done),
            resume=len(plan.resume),
            retry=len(plan.retry),
            final=len(plan.final),
            deferred=plan.deferred,
        )
        return plan

    def copy_scans(
        self, plan: CopyPlan, source_db: PlatformDB, target_db: PlatformDB, result: RunResult
    ) -> None:
        """Move the files and create the scans of the plan (adopting unrecorded creates and uploads
        first)."""
        job, state, events = self.job, self.state, self.events
        scans = {s.id: s for s in source_db.scans_with_files(list(plan.todo))}
        ordered = [scans[i] for i in plan.todo if i in scans]
        # scans an earlier run created but could not record are done already: found, not sent
        adopted = adopt_creates(state, target_db, self.store, ordered, self.records, events)
        ordered = [s for s in ordered if s.id not in adopted]
        result.already_done += len(adopted)
        translations: dict[int, Translation] = {}
        if job.copy.strategy == "mapped":
            translations = self.translations(ordered, source_db, target_db)
        files = {ref.file_id for s in ordered for ref in s.files}
        events.emit("plan", steps={"download": len(files), "upload": len(files), "create": len(ordered)})
        self.tally.total = len(ordered)
        in_flight = batch_size_for(job.batch, sum(len(s.files) for s in ordered) / max(1, len(ordered)))
        self.tally.resize(in_flight)
        w = job.batch.workers
        # connections per host: as many as requests can be on the wire to it at once
        source = open_api(job.source, job, events, pool_size=w.download + 2)
        try:
            target = open_api(job.target.instance, job, events, pool_size=w.upload + w.create + 2)
        except BaseException:
            source.close()
            raise
        epoch = state.meta("created_at") or "0"
        fingerprint, source_api = job.fingerprint(), job.source.api_url
        try:
            if self.adoption:  # else the check said why not, and unrecorded uploads are sent again
                # an attempt's file is created while it is on the wire: within its wall-clock limit
                adopt_uploads(state, target_db, self.store, files, target.timeouts.limit, events)
            mover = FileMover(
                state,
                source,
                target,
                self.store,
                w.download,
                w.upload,
                events,
                uid_for=lambda file_id: upload_uid(epoch, fingerprint, source_api, file_id),
            )
            try:
                pipeline = ScanPipeline(
                    job,
                    state,
                    events,
                    self.stop,
                    self.tally,
                    mover,
                    target,
                    uid_for=lambda scan_id: request_uid(epoch, fingerprint, source_api, scan_id),
                    captured_at=int(time.time()) if job.copy.captured_at == "now" else None,
                )
                result.threshold_stop = pipeline.run(ordered, self.records, translations)
            finally:
                mover.close()
        finally:
            for instance, api in ((job.source, source), (job.target.instance, target)):
                self.traffic.keep(instance, api)
                api.close()

    def translations(
        self, scans: Sequence[SourceScan], source_db: PlatformDB, target_db: PlatformDB
    ) -> dict[int, Translation]:
        """mapped strategy: per scan, its hint ids translated by name (or why they can't be)."""
        hints = {s.id: hint_ids(s.provided_values) for s in scans}
        names = source_db.mapping_names(
            store_planogram_ids=[h.store_planogram for h in hints.values() if h.store_planogram],
            section_ids=[h.section_id for h in hints.values() if h.section_id],
            category_ids=[h.category_id for h in hints.values() if h.category_id],
        )
        resolved = target_db.resolve_names(
            self.store,
            planogram_names=names.store_planograms.values(),
            sections=names.sections.values(),
            category_names=names.categories.values(),
        )
        out: dict[int, Translation] = {}
        for scan_id, h in hints.items():
            try:
                out[scan_id] = translate_hints(h, names, resolved)
            except Untranslatable as exc:
                out[scan_id] = exc
        return out

    def write_outputs(self) -> list[Outcome]:
        """The mapping and failures CSVs; the scans' outcomes they were written from."""
        job = self.job
        outcomes = self.state.outcomes(ItemKind.SCAN)
        pairs = [(source, target) for source, target, status in outcomes if status == Status.DONE]
        write_csv(job.output / MAPPING_CSV, ["Source_Scan_ID", "Target_Scan_ID"], pairs)
        failures = [
            (r.source_id, r.step, r.error_class, r.error_message)
            for r in self.state.items(ItemKind.SCAN, status=Status.FAILED, selected_only=True)
        ]
        write_csv(job.output / FAILURES_CSV, ["scan_id", "step", "error_class", "error"], failures)
        self.events.emit(
            "output", what=f"scan mapping ({len(pairs)} pairs)", path=str(job.output / MAPPING_CSV)
        )
        return outcomes

    def summarize(self, result: RunResult, plan: CopyPlan, clock: Stopwatch) -> None:
        rate = result.done / clock.elapsed if clock.elapsed > 0 else 0.0
        failed_text, after = summary_tail(
            result, deferred=plan.deferred, window=self.tally.window, options=self.ctx.options
        )
        text = (
            f"copied {result.done}, already done {result.already_done}, failed {result.failed}"
            f"{failed_text}; {clock.elapsed:.1f}s, {rate:.2f} scans/s{self.traffic.text()}{after}"
        )
        if result.failed:
            text += f"\nfailures: {self.job.output / FAILURES_CSV} (rerun to retry them)"
        self.events.emit(
            "summary",
            text=text,
            copied=result.done,
            already_done=result.already_done,
            failed=result.failed,
            failures_by_class=result.failures_by_class,
            elapsed=round(clock.elapsed, 2),
            rate=round(rate, 3),
            **self.traffic.fields(),
        )
        result.extra["rate"] = round(rate, 3)


def _record_analysis(result: RunResult, outcome: dict[str, Any] | None) -> None:
    """The analysis' figures in the run's summary (`status --runs`), when it wrote one."""
    if outcome is not None:
        result.extra.update(
            comments=outcome["comments"], scans=outcome["scans"], unprocessed=outcome["unprocessed"]
        )

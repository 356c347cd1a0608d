"""Copy mode: source scans flow download -> upload -> create, each on its own, resumable, no duplicates."""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from tempfile import SpooledTemporaryFile
from typing import Any, BinaryIO, cast

from scanjobs import failpoints
from scanjobs.errors import AuthError, JobError, PlatformError, ScanjobsError
from scanjobs.events import Events
from scanjobs.modes.common import (
    FailureWindow,
    Stopwatch,
    open_api,
    open_db,
    request_workers,
    select_scan_ids,
    write_csv,
)
from scanjobs.modes.payload import Untranslatable, build_payload, hint_ids, translate_hints
from scanjobs.platform.api import PlatformAPI
from scanjobs.platform.db import PlatformDB, ScanFileRef, SourceScan
from scanjobs.lifecycle import RunContext, RunResult
from scanjobs.jobfile.model import Job, Workers
from scanjobs.state import ItemRecord, StateStore

__all__ = [
    "CopyPlan", "plan_copy", "scans_in_flight_needed", "unsettled_uploads", "match_uploads",
    "adopt_uploads", "request_uid", "CopyMode", "MODE", "MAPPING_CSV", "FAILURES_CSV",
]

MAPPING_CSV = "scan_mapping.csv"
FAILURES_CSV = "failures.csv"
SPOOL_BYTES = 1 << 20  # files up to 1 MiB stay in memory; larger ones spill to a temp file
INPUT_TYPES = ("image", "video", "keyframe")


class NotFoundOnSource(ScanjobsError):
    """A selected scan id does not exist on the source."""


class NoFiles(ScanjobsError):
    """The source scan has no files: there is nothing to copy."""


@dataclass(frozen=True, slots=True)
class CopyPlan:
    """What this run does, in order: unfinished work first, then failures, then new scans."""

    resume: tuple[int, ...]
    retry: tuple[int, ...]
    new: tuple[int, ...]
    already_done: tuple[int, ...]
    deferred: int  # new scans left for a later run by --limit

    @property
    def todo(self) -> tuple[int, ...]:
        return self.resume + self.retry + self.new


def plan_copy(
    selected: Sequence[int],
    records: dict[str, ItemRecord],
    *,
    limit: int | None = None,
    retry_failed_only: bool = False,
) -> CopyPlan:
    """Pure: the selection and what the state holds -> the work of this run."""
    resume, retry, new, done = [], [], [], []
    for scan_id in selected:
        rec = records.get(str(scan_id))
        status = rec.status if rec else "pending"
        if status == "done":
            done.append(scan_id)
        elif status == "failed":
            retry.append(scan_id)
        elif status == "running" or (rec is not None and rec.request_uid):
            resume.append(scan_id)
        else:
            new.append(scan_id)
    if retry_failed_only:
        deferred, new = len(new), []
    elif limit is not None:
        deferred, new = max(0, len(new) - limit), new[:limit]
    else:
        deferred = 0
    return CopyPlan(tuple(resume), tuple(retry), tuple(new), tuple(done), deferred)


ROUND_TRIPS_PER_SCAN = 4  # file meta, bytes, upload, create: a scan's files move side by side


def scans_in_flight_needed(workers: Workers, files_per_scan: float) -> int:
    """The batch.size that keeps the slowest stage's workers busy.

    The stages serve at most min(download / 2F, upload / F, create) scans per round trip (F files
    a scan; a download is two requests), and each scan stays ROUND_TRIPS_PER_SCAN round trips in
    flight, so by Little's law that many times as many scans must be in flight. Latency cancels.
    """
    f = max(files_per_scan, 1.0)
    per_round_trip = min(workers.download / (2 * f), workers.upload / f, float(workers.create))
    return math.ceil(ROUND_TRIPS_PER_SCAN * per_round_trip - 1e-9)


def unsettled_uploads(records: Sequence[ItemRecord]) -> list[ItemRecord]:
    """File records whose upload was sent (or may have been) without its answer being recorded:
    an upload intent left by a kill, or an upload failed in a way that does not prove the
    platform made nothing (a read timeout, a broken answer)."""
    return [
        r for r in records
        if r.step == "upload" and r.status in ("running", "failed") and r.data.get("sha256")
        and r.error_class != "PermanentError"  # the platform refused it: it made nothing
    ]


def match_uploads(
    unsettled: Sequence[ItemRecord], found: Sequence[tuple[int, str, str]], taken: set[int]
) -> dict[str, int]:
    """Pure: source file key -> the target file to adopt for it.

    A found file (id, sha256, name) matches an unsettled upload of the same bytes and name; each
    is adopted once, lowest id first, and never one that the state already gives to a file.
    """
    free: dict[tuple[str, str], list[int]] = {}
    for file_id, checksum, name in sorted(found):
        if file_id not in taken:
            free.setdefault((checksum, name), []).append(file_id)
    adopted: dict[str, int] = {}
    for rec in unsettled:
        ids = free.get((str(rec.data["sha256"]), str(rec.data.get("name"))))
        if ids:
            adopted[rec.key] = ids.pop(0)
    return adopted


def adopt_uploads(
    state: StateStore, target_db: PlatformDB, store: int, file_ids: set[int], events: Events
) -> int:
    """Record as done the uploads that an earlier run sent but could not record; how many.

    The platform has no idempotency key for uploads, so a kill between its answer and our
    record would upload the file again. Such a file is in the target store, with the same bytes
    and name, and no scan uses it: adopt it. Where the platform's file table cannot be searched
    like that, say so and upload again (the orphan is never attached to a scan).
    """
    files = state.items("file")
    unsettled = [r for r in unsettled_uploads(files) if r.source_id in file_ids]
    if not unsettled:
        return 0
    started = min(float(r.data.get("upload_started") or 0) for r in unsettled)
    since = datetime.fromtimestamp(max(0.0, started - 3600), tz=timezone.utc)  # an hour of clock skew
    try:
        found = target_db.unclaimed_uploads(store, [str(r.data["sha256"]) for r in unsettled], since)
    except PlatformError as exc:
        events.emit(
            "warning",
            message=f"{len(unsettled)} upload(s) of an earlier run were not recorded and the target "
            f"cannot be searched for them, so they are uploaded again ({exc})",
        )
        return 0
    adopted = match_uploads(unsettled, found, {int(r.target_id) for r in files if r.target_id})
    for key, target_id in adopted.items():
        state.update(
            "file", key, step="upload", status="done", target_id=target_id,
            data={"adopted": True}, clear_error=True,
        )
    if adopted:
        events.emit(
            "info",
            message=f"{len(adopted)} file(s) that an earlier run uploaded without recording were "
            "found on the target and are used as they are",
        )
    return len(adopted)


def request_uid(epoch: str, fingerprint: str, source_api: str, scan_id: int) -> str:
    """The idempotency key of one scan's create: stable across resumes, new after --restart."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"scanjobs:{epoch}:{fingerprint}:{source_api}:{scan_id}"))


class FileMover:
    """Moves each source file once (download, then upload), however many scans share it."""

    def __init__(
        self,
        state: StateStore,
        source: PlatformAPI,
        target: PlatformAPI,
        store: int,
        workers_download: int,
        workers_upload: int,
        events: Events,
    ) -> None:
        self.state, self.source, self.target, self.store, self.events = state, source, target, store, events
        self.download_slots, self.downloads = request_workers(workers_download, "download")
        self.upload_slots, self.uploads = request_workers(workers_upload, "upload")
        self.moves: dict[int, Future[int]] = {}
        self.lock = threading.Lock()
        # one read up front instead of one per file: the state lock is the pipeline's hot spot
        self.uploaded = {int(r.key): r.target_id for r in state.items("file", status="done") if r.target_id}

    def close(self) -> None:
        self.downloads.shutdown(wait=True)
        self.uploads.shutdown(wait=True)

    def move(self, ref: ScanFileRef) -> Future[int]:
        """A future of the target file id of `ref` (already known, or being moved)."""
        with self.lock:
            if ref.file_id in self.moves:
                return self.moves[ref.file_id]
            future: Future[int] = Future()
            self.moves[ref.file_id] = future
        if ref.file_id in self.uploaded:
            future.set_result(self.uploaded[ref.file_id])
            self.events.emit("advance", step="download")
            self.events.emit("advance", step="upload")
            return future
        self.downloads.submit(self._download, ref, future)
        return future

    def _fail(self, ref: ScanFileRef, step: str, exc: BaseException, future: Future[int]) -> None:
        exc.scanjobs_step = step  # type: ignore[attr-defined]
        self.state.fail("file", str(ref.file_id), step, exc, attempt=True, ensure=ref.file_id)
        future.set_exception(exc)

    def _download(self, ref: ScanFileRef, future: Future[int]) -> None:
        spool = cast(BinaryIO, SpooledTemporaryFile(max_size=SPOOL_BYTES))  # noqa: SIM115 - handed on
        try:
            meta = self.source.file_meta(ref.file_id, slot=self.download_slots)
            result = self.source.download(
                meta.url, failpoints.FirstWrite(spool), slot=self.download_slots  # type: ignore[arg-type]
            )
        except BaseException as exc:
            spool.close()
            self._fail(ref, "download", exc, future)
            return
        self.events.emit("advance", step="download")
        name = meta.original_filename or f"{ref.file_id}.jpg"
        self.uploads.submit(self._upload, ref, spool, name, result.sha256, result.content_type, future)

    def _upload(
        self,
        ref: ScanFileRef,
        spool: BinaryIO,
        name: str,
        sha256: str,
        content_type: str | None,
        future: Future[int],
    ) -> None:
        input_type = ref.file_type if ref.file_type in INPUT_TYPES else "image"
        try:
            # The intent, before the POST: a rerun after a kill looks for this upload on the
            # target (by store, bytes and name) instead of uploading the file a second time.
            self.state.update(
                "file",
                str(ref.file_id),
                step="upload",
                status="running",
                data={"sha256": sha256, "name": name, "upload_started": round(time.time(), 3)},
                ensure=ref.file_id,
            )
            with spool:
                spool.seek(0)
                target_id = self.target.upload(
                    spool,
                    name,
                    input_type=input_type,
                    store=self.store,
                    checksum=sha256,
                    content_type=content_type,
                    slot=self.upload_slots,
                )
            failpoints.hit("after_upload")
            self.state.update(
                "file",
                str(ref.file_id),
                step="upload",
                status="done",
                target_id=target_id,
                data={"sha256": sha256},
                clear_error=True,
                attempt=True,
                ensure=ref.file_id,
            )
        except BaseException as exc:
            self._fail(ref, "upload", exc, future)
            return
        self.events.emit("advance", step="upload")
        future.set_result(target_id)


@dataclass
class _Progress:
    total: int
    finished: int = 0
    done: int = 0
    failed: int = 0
    batch_done: int = 0
    batch_failed: int = 0
    batch: int = 0
    failures_by_class: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class CopyRun:
    """One execution of a copy job (the pipeline and its bookkeeping)."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.job: Job = ctx.job
        assert self.job.target is not None and self.job.target.store is not None
        self.store: int = self.job.target.store
        self.state = ctx.state
        self.events = ctx.events
        self.fatal: BaseException | None = None
        epoch = self.state.meta("created_at") or "0"
        fingerprint, source_api = self.job.fingerprint(), self.job.source.api_url
        self.uid_for: Callable[[int], str] = lambda scan_id: request_uid(
            epoch, fingerprint, source_api, scan_id
        )
        self.captured_at = int(time.time()) if self.job.copy.captured_at == "now" else None

    # -- the pieces ----------------------------------------------------------------------
    def translations(
        self, scans: Sequence[SourceScan], source_db: PlatformDB, target_db: PlatformDB
    ) -> dict[int, dict[str, int] | Exception]:
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
        out: dict[int, dict[str, int] | Exception] = {}
        for scan_id, h in hints.items():
            try:
                out[scan_id] = translate_hints(h, names, resolved)
            except Untranslatable as exc:
                out[scan_id] = exc
        return out

    def copy_one(
        self,
        scan: SourceScan,
        record: ItemRecord | None,
        mover: FileMover,
        create_slots: threading.Semaphore,
        target: PlatformAPI,
        translated: dict[str, int] | Exception | None,
    ) -> None:
        key = str(scan.id)
        step = "select"
        try:
            if not scan.files:
                raise NoFiles(f"scan {scan.id} has no files on {self.job.source.name}: nothing to copy")
            if isinstance(translated, Exception):
                raise translated
            step = "files"
            futures = [mover.move(ref) for ref in scan.files]
            target_files = []
            for future in futures:
                try:
                    target_files.append(future.result())
                except BaseException as exc:
                    step = getattr(exc, "scanjobs_step", "files")
                    raise
            step = "create"
            uid = record.request_uid if record and record.request_uid else self.uid_for(scan.id)
            # the intent, recorded before the POST (the uid is derived, so it is the same anyway)
            self.state.update("scan", key, step="create", status="running", request_uid=uid, attempt=True)
            payload = build_payload(
                scan.provided_values,
                store=self.store,
                files=target_files,
                strategy=self.job.copy.strategy,
                captured_at=self.captured_at,
                translated=translated if isinstance(translated, dict) else None,
            )
            failpoints.hit("before_create")
            target_id = target.create_scan(payload, uid, slot=create_slots)
            failpoints.hit("after_create")
            self.state.update(
                "scan",
                key,
                step="create",
                status="done",
                target_id=target_id,
                data={"target_files": target_files},
                clear_error=True,
            )
            self.finished(scan.id, step, None)
        except AuthError as exc:
            self.fatal = self.fatal or exc
            self.ctx.stop.request("auth")
            self.state.fail("scan", key, step, exc, attempt=step != "create")
            self.finished(scan.id, step, exc)
        except Exception as exc:
            self.state.fail("scan", key, step, exc, attempt=step != "create")
            self.finished(scan.id, step, exc)

    def finished(self, scan_id: int, step: str, error: BaseException | None) -> None:
        p = self.progress
        with p.lock:
            p.finished += 1
            self.window.record(error is not None)
            if error is None:
                p.done += 1
                p.batch_done += 1
            else:
                p.failed += 1
                p.batch_failed += 1
                name = type(error).__name__
                p.failures_by_class[name] = p.failures_by_class.get(name, 0) + 1
            batch_full = p.batch_done + p.batch_failed >= self.job.batch.size or p.finished == p.total
            batch = None
            if batch_full:
                p.batch += 1
                batch = (p.batch, p.batch_done, p.batch_failed, p.finished)
                p.batch_done = p.batch_failed = 0
        fields: dict[str, Any] = {"scan_id": scan_id, "step": "create", "status": "done"}
        if error is not None:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            fields.update(step=step, status="failed", error=f"{type(error).__name__}: {message}")
            self.events.emit("advance", step="create")
        self.events.emit("item", **fields)
        if batch:
            self.events.emit(
                "batch", batch=batch[0], done=batch[1], failed=batch[2], finished=batch[3], total=p.total
            )

    # -- the run -------------------------------------------------------------------------
    def run(self) -> RunResult:
        job, state, events, stop = self.job, self.state, self.events, self.ctx.stop
        assert job.target is not None
        clock = Stopwatch()
        source_db = open_db(job.source, job)
        try:
            target_db = open_db(job.target.instance, job)
        except BaseException:
            source_db.close()
            raise
        try:
            if not target_db.store_exists(self.store):
                raise JobError(
                    f"target store {self.store} does not exist on {job.target.instance.name}",
                    hint="check target.store in the job file",
                )
            selected, missing = select_scan_ids(job.scans, source_db)
            state.add_items("scan", [(str(i), i) for i in [*selected, *missing]])
            for scan_id in missing:
                state.fail(
                    "scan",
                    str(scan_id),
                    "select",
                    NotFoundOnSource(f"scan {scan_id} does not exist on {job.source.name}"),
                )
            if missing:
                events.emit(
                    "warning",
                    message=f"{len(missing)} scan id(s) not found on "
                    f"{job.source.name}: {', '.join(map(str, missing[:20]))}",
                )
            records = {r.key: r for r in state.items("scan")}
            plan = plan_copy(
                selected,
                records,
                limit=self.ctx.options.limit,
                retry_failed_only=self.ctx.options.retry_failed,
            )
            events.emit(
                "run_started",
                job=job.name,
                mode="copy",
                total=len(selected) + len(missing),
                todo=len(plan.todo),
                already_done=len(plan.already_done),
                resume=len(plan.resume),
                retry=len(plan.retry),
                deferred=plan.deferred,
            )
            result = RunResult(already_done=len(plan.already_done))
            if plan.todo:
                self.execute(plan, records, source_db, target_db, result)
            result.failed += len(missing)
            if missing:
                result.failures_by_class["NotFoundOnSource"] = len(missing)
            self.write_outputs()
            if self.fatal is not None:
                raise self.fatal
            rate = result.done / clock.elapsed if clock.elapsed > 0 else 0.0
            failed_text = ", ".join(f"{n} {c}" for c, n in sorted(result.failures_by_class.items()))
            text = (
                f"copied {result.done}, already done {result.already_done}, failed {result.failed}"
                f"{f' ({failed_text})' if failed_text else ''}; {clock.elapsed:.1f}s, {rate:.2f} scans/s"
            )
            if plan.deferred:
                text += f"; {plan.deferred} new scan(s) left for the next run (--limit)"
            if result.threshold_stop:
                text += f"\nstopped early: {self.window.describe()}; fix the cause and rerun to go on"
            if result.failed:
                text += f"\nfailures: {job.output / FAILURES_CSV} (rerun to retry them)"
            events.emit(
                "summary",
                text=text,
                copied=result.done,
                already_done=result.already_done,
                failed=result.failed,
                failures_by_class=result.failures_by_class,
                elapsed=round(clock.elapsed, 2),
                rate=round(rate, 3),
            )
            result.extra["rate"] = round(rate, 3)
            if job.analysis.enabled and not stop.requested:
                from scanjobs.modes.analyze import analyze_copy_job

                analyze_copy_job(job, state, events, stop, source_db, target_db)
            return result
        finally:
            source_db.close()
            target_db.close()

    def execute(
        self,
        plan: CopyPlan,
        records: dict[str, ItemRecord],
        source_db: PlatformDB,
        target_db: PlatformDB,
        result: RunResult,
    ) -> None:
        job, state, events, stop = self.job, self.state, self.events, self.ctx.stop
        assert job.target is not None
        scans = {s.id: s for s in source_db.scans_with_files(list(plan.todo))}
        ordered = [scans[i] for i in plan.todo if i in scans]
        translations: dict[int, dict[str, int] | Exception] = {}
        if job.copy.strategy == "mapped":
            translations = self.translations(ordered, source_db, target_db)
        files = {ref.file_id for s in ordered for ref in s.files}
        events.emit("plan", steps={"download": len(files), "upload": len(files), "create": len(ordered)})
        self.progress = _Progress(total=len(ordered))
        self.window = FailureWindow(job.batch.size, job.batch.max_failed_ratio)
        w = job.batch.workers
        # connections per host: as many as requests can be on the wire to it at once
        source = open_api(job.source, job, events, pool_size=w.download + 2)
        target = open_api(job.target.instance, job, events, pool_size=w.upload + w.create + 2)
        adopt_uploads(state, target_db, self.store, files, events)
        mover = FileMover(state, source, target, self.store, w.download, w.upload, events)
        create_slots = threading.Semaphore(w.create)
        in_flight = threading.Semaphore(job.batch.size)
        scans_pool = ThreadPoolExecutor(job.batch.size, thread_name_prefix="scan")
        try:
            for scan in ordered:
                while not in_flight.acquire(timeout=0.2):
                    if stop.requested:
                        break
                if stop.requested:
                    break
                if self.window.exceeded():
                    result.threshold_stop = True
                    in_flight.release()
                    break
                future = scans_pool.submit(
                    self.copy_one,
                    scan,
                    records.get(str(scan.id)),
                    mover,
                    create_slots,
                    target,
                    translations.get(scan.id),
                )
                future.add_done_callback(lambda _f: in_flight.release())
        finally:
            scans_pool.shutdown(wait=True)  # in-flight scans finish, also after a stop
            mover.close()
            source.close()
            target.close()
        if self.window.exceeded():
            result.threshold_stop = True
        result.done = self.progress.done
        result.failed = self.progress.failed
        result.failures_by_class = dict(self.progress.failures_by_class)

    def write_outputs(self) -> None:
        job, state, events = self.job, self.state, self.events
        records = state.items("scan")
        pairs = [(r.source_id, r.target_id) for r in records if r.status == "done"]
        write_csv(job.output / MAPPING_CSV, ["Source_Scan_ID", "Target_Scan_ID"], pairs)
        failures = [
            (r.source_id, r.step, r.error_class, r.error_message) for r in records if r.status == "failed"
        ]
        write_csv(job.output / FAILURES_CSV, ["scan_id", "step", "error_class", "error"], failures)
        events.emit("output", what=f"scan mapping ({len(pairs)} pairs)", path=str(job.output / MAPPING_CSV))


class CopyMode:
    def plan(self, job: Job, state: StateStore | None, events: Events) -> dict[str, Any]:
        from scanjobs.modes.preflight import preflight_copy

        return preflight_copy(job, state, events)

    def execute(self, ctx: RunContext) -> RunResult:
        return CopyRun(ctx).run()


MODE = CopyMode()

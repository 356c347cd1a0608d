"""One run of a download job: every file of the selected scans, meaningfully named, streamed, resumable."""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from scanjobs import failpoints
from scanjobs.errors import NoFiles, NotFoundOnSource, StateError
from scanjobs.fsutil import create_new, sha256_of
from scanjobs.jobfile.model import DownloadJob
from scanjobs.modes.base import RunContext, RunResult
from scanjobs.modes.download.naming import extension_for, file_name, safe_join
from scanjobs.modes.outcome import Tally, error_text, summary_tail, take_new, warn_not_found
from scanjobs.modes.reads import job_reads, require_columns
from scanjobs.modes.resources import (
    Stopwatch,
    Traffic,
    open_api,
    open_db,
    request_workers,
    select_scan_ids,
    selection_day,
    warn_nothing_selected,
    write_csv,
)
from scanjobs.platform.db import DownloadInfo, PlatformDB, ScanFileRef
from scanjobs.state import ItemKind, Status

if TYPE_CHECKING:
    from scanjobs.platform.api import PlatformAPI

__all__ = ["DownloadRun", "MANIFEST_CSV", "FAILURES_CSV", "PART_PREFIX", "planned_images"]

MANIFEST_CSV = "manifest.csv"
FAILURES_CSV = "failures.csv"
PART_PREFIX = ".scanjobs-part-"  # temp names in the output folder; a rerun removes leftovers


@dataclass(frozen=True, slots=True)
class Image:
    """One file of one scan to download (a file shared by two scans is two images)."""

    scan_id: int
    ref: ScanFileRef
    index: int | None  # None when the scan has one file
    section: str | None
    store_pog_id: str | None

    @property
    def key(self) -> str:
        return f"{self.scan_id}:{self.ref.file_id}:{self.index or 1}"


def planned_images(order: list[int], info: dict[int, DownloadInfo]) -> list[Image]:
    """Pure: the images of the scans, in scan then file order."""
    images = []
    for scan_id in order:
        scan = info.get(scan_id)
        if scan is None:
            continue
        single = len(scan.files) == 1
        for n, ref in enumerate(scan.files, start=1):
            images.append(Image(scan_id, ref, None if single else n, scan.section_name, scan.store_pog_id))
    return images


class DownloadRun:
    def __init__(self, ctx: RunContext, job: DownloadJob) -> None:
        self.ctx, self.job, self.state, self.events = ctx, job, ctx.state, ctx.events
        self.tally = Tally(
            0, batch_size=job.batch.size, max_failed_ratio=job.batch.max_failed_ratio, stop=ctx.stop
        )
        self.section_max = job.download.section_max_length
        self.traffic = Traffic()
        self.slots, self.threads = request_workers(job.batch.workers.download, "download")

    def name_for(self, image: Image, original_filename: str | None, content_type: str | None) -> str:
        return file_name(
            image.scan_id,
            image.section,
            image.store_pog_id,
            index=image.index,
            extension=extension_for(original_filename, content_type),
            section_max_length=self.section_max,
        )

    def fetch(self, api: PlatformAPI, image: Image) -> None:
        """Download one image into a part file, then rename it into place once complete."""
        if self.tally.should_stop():
            return
        out = self.job.output
        key = image.key
        part: Path | None = None
        try:
            self.state.record_intent(ItemKind.IMAGE, key, "download", attempt=True)
            fd, part_name = _mkstemp(out)
            part = Path(part_name)
            with os.fdopen(fd, "wb") as fh:
                meta, result = api.download_file(
                    image.ref.file_id, cast(BinaryIO, failpoints.FirstWrite(fh)), slot=self.slots
                )
                fh.flush()
                os.fsync(fh.fileno())
            size = part.stat().st_size
            if size != result.bytes:  # download() checked the answer; this checks the disk
                raise OSError(f"incomplete download: {size} bytes on disk, expected {result.bytes}")
            final = safe_join(out, self.name_for(image, meta.original_filename, result.content_type))
            if final.exists() and final.stat().st_size == size and sha256_of(final) == result.sha256:
                part.unlink()  # complete already (a run died before recording it): keep it as it is
            else:
                os.replace(part, final)
            part = None
            self.state.mark_done(
                ItemKind.IMAGE,
                key,
                "download",
                data={
                    "path": final.name,
                    "bytes": size,
                    "sha256": result.sha256,
                    "file_id": image.ref.file_id,
                    "scan_id": image.scan_id,
                    "section": image.section,
                    "store_pog_id": image.store_pog_id,
                },
            )
            self.finished(image, None)
        except Exception as exc:
            try:
                self.state.mark_failed(ItemKind.IMAGE, key, "download", exc)
            except StateError as record_error:
                exc = record_error  # not recorded: the run stops (Tally), the rerun redoes it
            self.finished(image, exc)
        finally:
            if part is not None:
                with contextlib.suppress(FileNotFoundError):
                    part.unlink()

    def finished(self, image: Image, error: BaseException | None) -> None:
        self.tally.record(error)
        fields: dict[str, Any] = {
            "scan_id": image.scan_id,
            "file_id": image.ref.file_id,
            "step": "download",
            "status": "done" if error is None else "failed",
        }
        if error is not None:
            fields["error"] = error_text(error)
        self.events.emit("item", **fields)

    def complete_on_disk(self, record_data: dict[str, Any]) -> bool:
        path = self.job.output / str(record_data.get("path", ""))
        return (
            bool(record_data.get("path"))
            and path.is_file()
            and path.stat().st_size == record_data.get("bytes")
        )

    def run(self) -> RunResult:
        clock = Stopwatch()
        job = self.job
        with open_db(job.source, job) as db:
            (reads,) = job_reads(job)
            require_columns([(db, reads)], "download", self.events)  # else exit 5 before anything
            self.prepare_output()
            chosen, missing, info, deferred = self.select(db)
        images = planned_images(chosen, info)
        empty = [s for s in chosen if s in info and not info[s].files]
        result = RunResult()
        todo = self.plan(images, chosen, deferred, result)
        if todo:
            self.download(todo)
        self.tally.into(result)
        self.tally.raise_fatal(StateError)  # the outputs come from the state: nothing to write
        for error, ids in ((NotFoundOnSource, missing), (NoFiles, empty)):
            if ids:
                result.count_failure(error.__name__, len(ids))
        self.write_outputs(missing, empty)
        self.tally.raise_fatal()
        self.summarize(result, deferred, clock)
        return result

    # -- the steps -----------------------------------------------------------------------
    def prepare_output(self) -> None:
        self.job.output.mkdir(parents=True, exist_ok=True)
        for leftover in self.job.output.glob(PART_PREFIX + "*"):
            leftover.unlink()  # half-written by a run that was killed

    def select(self, db: PlatformDB) -> tuple[list[int], list[int], dict[int, DownloadInfo], int]:
        """The scans this run takes (in selection order), those missing on the source, what the
        source says of the taken ones, and how many new scans are left for a later run."""
        job = self.job
        today = selection_day(job.scans, self.state, self.events)
        selected, missing = select_scan_ids(job.scans, db, today=today)
        warn_nothing_selected(self.events, job.scans, db, today, selected)
        warn_not_found(self.events, missing, job.source.name)
        # a scan is known once a run took it, whether it had files or not (--limit moves on)
        known_scans = {
            r.source_id for kind in (ItemKind.SCAN, ItemKind.IMAGE) for r in self.state.items(kind)
        }
        new_scans, deferred = take_new([s for s in selected if s not in known_scans], self.ctx.options)
        taken = known_scans | set(new_scans)
        chosen = [s for s in selected if s in taken]
        info = db.download_info(chosen)
        self.state.select_only([ItemKind.SCAN, ItemKind.IMAGE], [*selected, *missing])
        self.state.add_items(ItemKind.SCAN, [(str(s), s) for s in chosen], step="select", status=Status.DONE)
        failed = {r.source_id for r in self.state.items(ItemKind.SCAN, status=Status.FAILED)}
        for scan_id in chosen:
            empty = scan_id in info and not info[scan_id].files
            if empty and scan_id not in failed:
                self.state.mark_failed(ItemKind.SCAN, str(scan_id), "select", self.no_files(scan_id))
            elif not empty and scan_id in failed:  # it has files now
                self.state.mark_done(ItemKind.SCAN, str(scan_id), "select")
        return chosen, missing, info, deferred

    def no_files(self, scan_id: int) -> NoFiles:
        return NoFiles(f"scan {scan_id} has no files on {self.job.source.name}: nothing to download")

    def plan(self, images: list[Image], chosen: list[int], deferred: int, result: RunResult) -> list[Image]:
        """The images to download (new, failed, or gone from disk); those there already and
        those failed for good (unless --retry-failed) are counted into `result`."""
        self.state.add_items(ItemKind.IMAGE, [(i.key, i.scan_id) for i in images])
        records = {r.key: r for r in self.state.items(ItemKind.IMAGE)}
        todo, already, final = [], 0, 0
        for image in images:
            rec = records[image.key]
            if rec.status == Status.DONE and self.complete_on_disk(rec.data):
                already += 1
                continue
            if rec.final and not self.ctx.options.retry_failed:
                result.count_failure(rec.error_class)
                final += 1
                continue
            if rec.status == Status.DONE:
                self.events.emit(
                    "warning",
                    message=f"{rec.data.get('path')} is missing or changed on disk: downloading it again",
                )
            todo.append(image)
        self.events.emit(
            "selected",
            job=self.job.name,
            mode="download",
            unit="file",
            total=len(images),
            todo=len(todo),
            already_done=already,
            final=final,
            scans=len(chosen),
            deferred=deferred,
        )
        result.already_done = already
        return todo

    def download(self, todo: list[Image]) -> None:
        job = self.job
        self.tally.total = len(todo)
        self.events.emit("plan", steps={"download": len(todo)})
        api = open_api(job.source, job, self.events, pool_size=job.batch.workers.download + 2)
        try:
            with self.threads as pool:
                futures: list[Future[None]] = [pool.submit(self.fetch, api, image) for image in todo]
                for future in futures:
                    future.result()
        finally:
            self.traffic.keep(job.source, api)
            api.close()

    def summarize(self, result: RunResult, deferred: int, clock: Stopwatch) -> None:
        rate = result.done / clock.elapsed if clock.elapsed else 0.0
        failed_text, after = summary_tail(
            result, deferred=deferred, window=self.tally.window, options=self.ctx.options
        )
        text = (
            f"downloaded {result.done} file(s), {result.already_done} already there, failed {result.failed}"
            f"{failed_text}; {clock.elapsed:.1f}s, {rate:.1f} files/s{self.traffic.text()}; "
            f"{self.job.output}{after}"
        )
        self.events.emit(
            "summary",
            text=text,
            downloaded=result.done,
            already_done=result.already_done,
            failed=result.failed,
            elapsed=round(clock.elapsed, 2),
            **self.traffic.fields(),
        )

    def write_outputs(self, missing: list[int], empty: list[int]) -> None:
        job, state = self.job, self.state
        rows, failures = [], []
        for rec in state.items(ItemKind.IMAGE, selected_only=True):
            d = rec.data
            if rec.status == Status.DONE:
                rows.append(
                    [
                        d.get("scan_id"),
                        d.get("file_id"),
                        d.get("section") or "",
                        d.get("store_pog_id") or "",
                        d.get("path"),
                        d.get("bytes"),
                        d.get("sha256"),
                    ]
                )
            elif rec.status == Status.FAILED:
                failures.append(
                    [rec.source_id, rec.key.split(":")[1], rec.step, rec.error_class, rec.error_message]
                )
        failures += [
            [s, "", "select", NotFoundOnSource.__name__, f"scan {s} does not exist on {job.source.name}"]
            for s in missing
        ]
        failures += [[s, "", "select", NoFiles.__name__, f"scan {s} has no files"] for s in empty]
        write_csv(
            job.output / MANIFEST_CSV,
            ["scan_id", "file_id", "section", "store_pog_id", "path", "bytes", "sha256"],
            rows,
        )
        write_csv(job.output / FAILURES_CSV, ["scan_id", "file_id", "step", "error_class", "error"], failures)
        self.events.emit("output", what=f"manifest ({len(rows)} files)", path=str(job.output / MANIFEST_CSV))


def _mkstemp(folder: Path) -> tuple[int, str]:
    """A part file in the output folder, with the permissions a normal file would get."""
    fd, path = create_new(folder, PART_PREFIX)
    return fd, str(path)

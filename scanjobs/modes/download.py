"""Download mode: every file of the selected scans, meaningfully named, streamed, resumable."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scanjobs import failpoints
from scanjobs.errors import AuthError
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
from scanjobs.modes.naming import extension_for, file_name, safe_join
from scanjobs.platform.api import PlatformAPI
from scanjobs.platform.db import DownloadInfo, ScanFileRef
from scanjobs.lifecycle import RunContext, RunResult
from scanjobs.jobfile.model import Job
from scanjobs.state import StateStore

__all__ = ["DownloadMode", "MODE", "MANIFEST_CSV", "FAILURES_CSV", "PART_PREFIX", "planned_images"]

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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class DownloadRun:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx, self.job, self.state, self.events = ctx, ctx.job, ctx.state, ctx.events
        self.lock = threading.Lock()
        self.window = FailureWindow(self.job.batch.size, self.job.batch.max_failed_ratio)
        self.result = RunResult()
        self.fatal: BaseException | None = None
        self.section_max = self.job.download.section_max_length
        self.slots, self.threads = request_workers(self.job.batch.workers.download, "download")

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
        stop = self.ctx.stop
        if stop.requested or self.window.exceeded():
            return
        out = self.job.output
        key = image.key
        part: Path | None = None
        try:
            self.state.update("image", key, step="download", status="running", attempt=True)
            meta = api.file_meta(image.ref.file_id, slot=self.slots)
            fd, part_name = _mkstemp(out)
            part = Path(part_name)
            with os.fdopen(fd, "wb") as fh:
                result = api.download(
                    meta.url, failpoints.FirstWrite(fh), slot=self.slots  # type: ignore[arg-type]
                )
                fh.flush()
                os.fsync(fh.fileno())
            size = part.stat().st_size
            if size != result.bytes or (meta.size is not None and size != meta.size):
                raise OSError(
                    f"incomplete download: {size} bytes on disk, expected "
                    f"{meta.size if meta.size is not None else result.bytes}"
                )
            final = safe_join(out, self.name_for(image, meta.original_filename, result.content_type))
            if final.exists() and final.stat().st_size == size and _sha256(final) == result.sha256:
                part.unlink()  # complete already (a run died before recording it): keep it as it is
            else:
                os.replace(part, final)
            part = None
            self.state.update(
                "image",
                key,
                step="download",
                status="done",
                clear_error=True,
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
        except AuthError as exc:
            self.fatal = self.fatal or exc
            stop.request("auth")
            self.state.fail("image", key, "download", exc)
            self.finished(image, exc)
        except Exception as exc:
            self.state.fail("image", key, "download", exc)
            self.finished(image, exc)
        finally:
            if part is not None:
                with contextlib.suppress(FileNotFoundError):
                    part.unlink()

    def finished(self, image: Image, error: BaseException | None) -> None:
        with self.lock:
            self.window.record(error is not None)
            if error is None:
                self.result.done += 1
            else:
                self.result.failed += 1
                name = type(error).__name__
                self.result.failures_by_class[name] = self.result.failures_by_class.get(name, 0) + 1
        fields: dict[str, Any] = {
            "scan_id": image.scan_id,
            "file_id": image.ref.file_id,
            "step": "download",
            "status": "done" if error is None else "failed",
        }
        if error is not None:
            fields["error"] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        self.events.emit("item", **fields)

    def complete_on_disk(self, record_data: dict[str, Any]) -> bool:
        path = self.job.output / str(record_data.get("path", ""))
        return (
            bool(record_data.get("path"))
            and path.is_file()
            and path.stat().st_size == record_data.get("bytes")
        )

    def run(self) -> RunResult:
        job, state, events, options = self.job, self.state, self.events, self.ctx.options
        clock = Stopwatch()
        job.output.mkdir(parents=True, exist_ok=True)
        for leftover in job.output.glob(PART_PREFIX + "*"):
            leftover.unlink()  # half-written by a run that was killed
        db = open_db(job.source, job)
        try:
            selected, missing = select_scan_ids(job.scans, db)
            if missing:
                events.emit(
                    "warning",
                    message=f"{len(missing)} scan id(s) not found on {job.source.name}: "
                    f"{', '.join(map(str, missing[:20]))}",
                )
            known_scans = {r.source_id for r in state.items("image")}
            new_scans = [s for s in selected if s not in known_scans]
            deferred = 0
            if options.retry_failed:
                deferred, new_scans = len(new_scans), []
            elif options.limit is not None:
                deferred, new_scans = max(0, len(new_scans) - options.limit), new_scans[: options.limit]
            taken = known_scans | set(new_scans)
            chosen = [s for s in selected if s in taken]
            info = db.download_info(chosen)
        finally:
            db.close()
        images = planned_images(chosen, info)
        empty = [s for s in chosen if s in info and not info[s].files]
        state.add_items("image", [(i.key, i.scan_id) for i in images])
        records = {r.key: r for r in state.items("image")}
        todo, already = [], 0
        for image in images:
            rec = records[image.key]
            if rec.status == "done" and self.complete_on_disk(rec.data):
                already += 1
            elif rec.status == "done":
                events.emit(
                    "warning",
                    message=f"{rec.data.get('path')} is missing or changed on disk: downloading it again",
                )
                todo.append(image)
            else:
                todo.append(image)
        self.result.already_done = already
        events.emit(
            "run_started",
            job=job.name,
            mode="download",
            unit="file",
            total=len(images),
            todo=len(todo),
            already_done=already,
            scans=len(chosen),
            deferred=deferred,
        )
        if todo:
            events.emit("plan", steps={"download": len(todo)})
            api = open_api(job.source, job, events, pool_size=job.batch.workers.download + 2)
            try:
                with self.threads as pool:
                    futures: list[Future[None]] = [pool.submit(self.fetch, api, image) for image in todo]
                    for future in futures:
                        future.result()
            finally:
                api.close()
        if self.window.exceeded():
            self.result.threshold_stop = True
        self.result.failed += len(missing) + len(empty)
        for label, ids in (("NotFoundOnSource", missing), ("NoFiles", empty)):
            if ids:
                self.result.failures_by_class[label] = len(ids)
        self.write_outputs(missing, empty)
        if self.fatal is not None:
            raise self.fatal
        rate = self.result.done / clock.elapsed if clock.elapsed else 0.0
        failed = ", ".join(f"{n} {c}" for c, n in sorted(self.result.failures_by_class.items()))
        text = (
            f"downloaded {self.result.done} file(s), {already} already there, failed {self.result.failed}"
            f"{f' ({failed})' if failed else ''}; {clock.elapsed:.1f}s, {rate:.1f} files/s; {job.output}"
        )
        if deferred:
            text += f"; {deferred} new scan(s) left for the next run (--limit)"
        if self.result.threshold_stop:
            text += f"\nstopped early: {self.window.describe()}; fix the cause and rerun to go on"
        events.emit(
            "summary",
            text=text,
            downloaded=self.result.done,
            already_done=already,
            failed=self.result.failed,
            elapsed=round(clock.elapsed, 2),
        )
        return self.result

    def write_outputs(self, missing: list[int], empty: list[int]) -> None:
        job, state = self.job, self.state
        rows, failures = [], []
        for rec in state.items("image"):
            d = rec.data
            if rec.status == "done":
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
            elif rec.status == "failed":
                failures.append(
                    [rec.source_id, rec.key.split(":")[1], rec.step, rec.error_class, rec.error_message]
                )
        failures += [
            [s, "", "select", "NotFoundOnSource", f"scan {s} does not exist on {job.source.name}"]
            for s in missing
        ]
        failures += [[s, "", "select", "NoFiles", f"scan {s} has no files"] for s in empty]
        write_csv(
            job.output / MANIFEST_CSV,
            ["scan_id", "file_id", "section", "store_pog_id", "path", "bytes", "sha256"],
            rows,
        )
        write_csv(job.output / FAILURES_CSV, ["scan_id", "file_id", "step", "error_class", "error"], failures)
        self.events.emit("output", what=f"manifest ({len(rows)} files)", path=str(job.output / MANIFEST_CSV))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def _mkstemp(folder: Path) -> tuple[int, str]:
    """A part file in the output folder, with the permissions a normal file would get."""
    fd, name = tempfile.mkstemp(prefix=PART_PREFIX, dir=folder)
    os.fchmod(fd, _FILE_MODE)
    return fd, name


class DownloadMode:
    def plan(self, job: Job, state: StateStore | None, events: Events) -> dict[str, Any]:
        from scanjobs.modes.preflight import preflight_download

        return preflight_download(job, state, events)

    def execute(self, ctx: RunContext) -> RunResult:
        return DownloadRun(ctx).run()


MODE = DownloadMode()

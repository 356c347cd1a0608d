"""The scan pipeline: a batch of scans in flight, each waiting for its files, then created once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from scanjobs import failpoints
from scanjobs.errors import NoFiles, StateError, StepFailed
from scanjobs.events import Events
from scanjobs.jobfile.model import CopyJob
from scanjobs.modes.base import StopSignal
from scanjobs.modes.copy.mover import FileMover
from scanjobs.modes.copy.payload import build_payload
from scanjobs.modes.outcome import Tally, error_text
from scanjobs.platform.db import SourceScan
from scanjobs.state import ItemKind, ItemRecord, StateStore

if TYPE_CHECKING:
    from scanjobs.platform.api import PlatformAPI

__all__ = ["ScanPipeline", "Translation"]

# mapped strategy: a scan's hint ids translated by name, or why they cannot be
Translation = dict[str, int] | Exception


class ScanPipeline:
    """Copies scans: each one's files through the mover, then its create with a stable uid."""

    def __init__(
        self,
        job: CopyJob,
        state: StateStore,
        events: Events,
        stop: StopSignal,
        tally: Tally,
        mover: FileMover,
        target: PlatformAPI,
        uid_for: Callable[[int], str],
        captured_at: int | None,
    ) -> None:
        self.job, self.state, self.events, self.stop, self.tally = job, state, events, stop, tally
        self.mover, self.target, self.uid_for, self.captured_at = mover, target, uid_for, captured_at
        self.store = job.target.store
        self.create_slots = threading.Semaphore(job.batch.workers.create)

    def run(
        self,
        scans: Sequence[SourceScan],
        records: dict[str, ItemRecord],
        translations: dict[int, Translation],
    ) -> bool:
        """Feed the scans in order, at most batch.size in flight; stop early on a stop request or
        a failure window over its ratio; return once every scan started has finished, whether
        the failure window stopped it."""
        threshold_stop = False
        in_flight = threading.Semaphore(self.tally.batch_size)  # the job's batch.size, or its default
        pool = ThreadPoolExecutor(self.tally.batch_size, thread_name_prefix="scan")
        try:
            for scan in scans:
                while not in_flight.acquire(timeout=0.2):
                    if self.stop.requested:
                        break
                if self.stop.requested:
                    break
                if self.tally.window.exceeded():
                    threshold_stop = True
                    in_flight.release()
                    break
                future = pool.submit(
                    self.copy_one, scan, records.get(str(scan.id)), translations.get(scan.id)
                )
                future.add_done_callback(lambda _f: in_flight.release())
        finally:
            pool.shutdown(wait=True)  # in-flight scans finish, also after a stop
        return threshold_stop

    def copy_one(self, scan: SourceScan, record: ItemRecord | None, translated: Translation | None) -> None:
        key = str(scan.id)
        step = "select"
        try:
            if not scan.files:
                raise NoFiles(f"scan {scan.id} has no files on {self.job.source.name}: nothing to copy")
            if isinstance(translated, Exception):
                raise translated
            step = "files"
            target_files = []
            for future in [self.mover.move(ref) for ref in scan.files]:
                try:
                    target_files.append(future.result())
                except StepFailed as exc:
                    step = exc.step
                    raise exc.cause from None
            step = "create"
            uid = record.request_uid if record and record.request_uid else self.uid_for(scan.id)
            # The intent, recorded before the POST (the uid is derived, so it is the same anyway),
            # with the files it sends: the scan a rerun looks for should the uid be forgotten.
            self.state.record_intent(
                ItemKind.SCAN,
                key,
                "create",
                request_uid=uid,
                data={"target_files": target_files},
                attempt=True,
            )
            payload = build_payload(
                scan.provided_values,
                store=self.store,
                files=target_files,
                file_types=[ref.file_type for ref in scan.files],
                strategy=self.job.copy.strategy,
                captured_at=self.captured_at,
                translated=translated if isinstance(translated, dict) else None,
            )
            failpoints.hit("before_create")
            target_id = self.target.create_scan(payload, uid, slot=self.create_slots)
            failpoints.hit("after_create")
            self.state.mark_done(
                ItemKind.SCAN, key, "create", target_id=target_id, data={"target_files": target_files}
            )
            self.finished(scan.id, step, None)
        except Exception as exc:
            try:
                self.state.mark_failed(ItemKind.SCAN, key, step, exc, attempt=step != "create")
            except StateError as record_error:
                exc = record_error  # not recorded: the run stops (Tally), the rerun redoes it
            self.finished(scan.id, step, exc)

    def finished(self, scan_id: int, step: str, error: BaseException | None) -> None:
        batch = self.tally.record(error)
        fields: dict[str, Any] = {"scan_id": scan_id, "step": "create", "status": "done"}
        if error is not None:
            fields.update(step=step, status="failed", error=error_text(error))
            self.events.emit("advance", step="create")
        self.events.emit("item", **fields)
        if batch:
            self.events.emit(
                "batch",
                batch=batch.number,
                done=batch.done,
                failed=batch.failed,
                finished=batch.finished,
                total=self.tally.total,
            )

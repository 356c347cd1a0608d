"""The file mover: each source file moves once (download, then upload), however many scans share it."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from tempfile import SpooledTemporaryFile
from typing import TYPE_CHECKING, BinaryIO, cast

from scanjobs import failpoints
from scanjobs.errors import StepFailed
from scanjobs.events import Events
from scanjobs.modes.copy.payload import upload_input_type
from scanjobs.modes.resources import request_workers
from scanjobs.platform.db import ScanFileRef
from scanjobs.state import ItemKind, StateStore, Status

if TYPE_CHECKING:
    from scanjobs.platform.api import PlatformAPI

__all__ = ["FileMover", "SPOOL_BYTES"]

SPOOL_BYTES = 1 << 20  # files up to 1 MiB stay in memory; larger ones spill to a temp file


class FileMover:
    """A future of each source file's target id; a failure comes as StepFailed(step, cause)."""

    def __init__(
        self,
        state: StateStore,
        source: PlatformAPI,
        target: PlatformAPI,
        store: int,
        workers_download: int,
        workers_upload: int,
        events: Events,
        uid_for: Callable[[int], str],
    ) -> None:
        self.state, self.source, self.target, self.store, self.events = state, source, target, store, events
        self.uid_for = uid_for  # a source file id -> its upload's REB-CLIENT-REQUEST-UID
        self.download_slots, self.downloads = request_workers(workers_download, "download")
        self.upload_slots, self.uploads = request_workers(workers_upload, "upload")
        self.moves: dict[int, Future[int]] = {}
        self.lock = threading.Lock()
        # one read up front instead of one per file: the state lock is the pipeline's hot spot
        self.uploaded = {
            int(r.key): r.target_id for r in state.items(ItemKind.FILE, status=Status.DONE) if r.target_id
        }

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
        """Record the failure and resolve the future, whatever the record does: the scans that
        wait for this file must never wait forever. A state that cannot be written is what the
        scans then fail with (it stops the run)."""
        try:
            self.state.mark_failed(
                ItemKind.FILE, str(ref.file_id), step, exc, attempt=True, ensure=ref.file_id
            )
        except BaseException as record_error:
            exc = record_error
        future.set_exception(StepFailed(step, exc))

    def _download(self, ref: ScanFileRef, future: Future[int]) -> None:
        spool = cast(BinaryIO, SpooledTemporaryFile(max_size=SPOOL_BYTES))  # noqa: SIM115 - handed on
        try:
            meta, result = self.source.download_file(
                ref.file_id, cast(BinaryIO, failpoints.FirstWrite(spool)), slot=self.download_slots
            )
        except BaseException as exc:
            spool.close()
            self._fail(ref, "download", exc, future)
            return
        self.events.emit("advance", step="download")
        name = meta.original_filename or f"{ref.file_id}.jpg"
        try:
            self.uploads.submit(self._upload, ref, spool, name, result.md5, result.content_type, future)
        except BaseException as exc:  # the pool is shut down: the run is ending
            spool.close()
            self._fail(ref, "upload", exc, future)

    def _upload(
        self,
        ref: ScanFileRef,
        spool: BinaryIO,
        name: str,
        md5: str,
        content_type: str | None,
        future: Future[int],
    ) -> None:
        input_type = upload_input_type(ref.file_type)
        key = str(ref.file_id)
        # derived, so a rerun after a crash sends the same uid (the platform may remember it)
        uid = self.uid_for(ref.file_id)
        size = spool.seek(0, os.SEEK_END)  # an attempt's time limit, hence adoption's window, grows with it

        def record_intent() -> None:
            # The intent, before each attempt's POST and inside its request slot: a rerun after a
            # kill looks for this upload on the target (by store, MD5, name and the time it was
            # sent: adoption.py) instead of uploading the file a second time, and no intent is
            # recorded for an upload still waiting its turn. `sha256: None` drops the checksum an
            # earlier scanjobs recorded (a merge patch), so the intent names one, this attempt's.
            self.state.record_intent(
                ItemKind.FILE,
                key,
                "upload",
                request_uid=uid,
                data={
                    "md5": md5,
                    "sha256": None,
                    "name": name,
                    "bytes": size,
                    "upload_started": round(time.time(), 3),
                },
                ensure=ref.file_id,
            )

        def record_stored(target_id: int) -> None:
            failpoints.hit("after_upload")
            self.state.mark_done(
                ItemKind.FILE,
                key,
                "upload",
                target_id=target_id,
                data={"md5": md5},
                attempt=True,
                ensure=ref.file_id,
            )

        try:
            with spool:
                spool.seek(0)
                target_id = self.target.upload(
                    spool,
                    name,
                    input_type=input_type,
                    store=self.store,
                    checksum=md5,
                    content_type=content_type,
                    request_uid=uid,
                    slot=self.upload_slots,
                    before_send=record_intent,
                    on_stored=record_stored,
                )
        except BaseException as exc:
            self._fail(ref, "upload", exc, future)
            return
        self.events.emit("advance", step="upload")
        future.set_result(target_id)

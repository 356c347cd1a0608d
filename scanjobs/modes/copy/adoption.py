"""Upload adoption: a file an earlier run uploaded without recording it is found and used, not sent again.

The platform has no idempotency key for uploads, so a kill between its answer and our record
would upload the file a second time. An upload intent (checksum and name) is recorded before
each POST; the next run looks for such files in the target store: same bytes and name, used by
no scan. Where the file table cannot be searched like that, it says so and uploads again (the
orphan is never attached to a scan).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from scanjobs.errors import PlatformError
from scanjobs.events import Events
from scanjobs.platform.db import PlatformDB
from scanjobs.state import ItemKind, ItemRecord, StateStore, Status

__all__ = ["unsettled_uploads", "match_uploads", "adopt_uploads"]

CLOCK_SKEW = 3600.0  # seconds: how much earlier than our intent the platform's clock may stamp a file


def unsettled_uploads(records: Sequence[ItemRecord]) -> list[ItemRecord]:
    """File records whose upload was sent (or may have been) without its answer being recorded:
    an upload intent left by a kill, or an upload failed in a way that does not prove the
    platform made nothing (a read timeout, a broken answer)."""
    return [
        r
        for r in records
        if r.step == "upload"
        and r.status in (Status.RUNNING, Status.FAILED)
        and r.data.get("sha256")
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
    """Record as done the uploads that an earlier run sent but could not record; how many."""
    files = state.items(ItemKind.FILE)
    unsettled = [r for r in unsettled_uploads(files) if r.source_id in file_ids]
    if not unsettled:
        return 0
    started = min(float(r.data.get("upload_started") or 0) for r in unsettled)
    since = datetime.fromtimestamp(max(0.0, started - CLOCK_SKEW), tz=timezone.utc)
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
        state.mark_done(ItemKind.FILE, key, "upload", target_id=target_id, data={"adopted": True})
    if adopted:
        events.emit(
            "info",
            message=f"{len(adopted)} file(s) that an earlier run uploaded without recording were "
            "found on the target and are used as they are",
        )
    return len(adopted)

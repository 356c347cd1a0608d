"""Upload adoption: a file an earlier run uploaded without recording it is found and used, not sent again.

An upload carries a request uid, but nothing confirms that the platform honours it for uploads
(or remembers it long), so a kill between its answer and our record could upload the file a
second time. An upload intent (checksum, name and the time of the attempt) is recorded before
each POST; the next run looks for such files in the target store: same bytes and name, used by
no scan, and created while that attempt could have been on the wire, by the platform's clock (its
offset from ours is measured). Another job may have sent the same bytes to the same store: a
file is adopted only when it is the one candidate of one intent in that window; in doubt the
file is uploaded again (with the same uid: a platform that remembers it answers the first file),
and an unclaimed orphan harms nothing. Where the file table cannot be searched like that, it
says so and uploads again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from scanjobs.errors import PlatformError
from scanjobs.events import Events
from scanjobs.platform.db import FoundUpload, PlatformDB
from scanjobs.state import ItemKind, ItemRecord, StateStore, Status

__all__ = ["unsettled_uploads", "intent_checksum", "match_uploads", "adopt_uploads"]

# Seconds a file's creation time may lie outside the window its intent allows, besides the
# measured uncertainty of the clock offset. EARLY: before our intent's timestamp (the platform's
# application servers stamp files, we measure its database's clock: they may differ a little);
# kept small, because another job's file sent just before ours is what it must tell apart.
# LATE: after the attempt's time limits (the request's way to the server and back).
EARLY = 0.5
LATE = 2.0


def intent_checksum(record: ItemRecord) -> str | None:
    """The checksum an upload intent sent: MD5 hex (the platform's), or the SHA-256 hex that
    scanjobs sent before issue 13, so that a state of an earlier version still resumes."""
    value = record.data.get("md5") or record.data.get("sha256")
    return str(value) if value else None


def unsettled_uploads(records: Sequence[ItemRecord]) -> list[ItemRecord]:
    """File records whose upload was sent (or may have been) without its answer being recorded:
    an upload intent left by a kill, or an upload failed in a way that does not prove the
    platform made nothing (a read timeout, a broken answer)."""
    return [
        r
        for r in records
        if r.step == "upload"
        and r.status in (Status.RUNNING, Status.FAILED)
        and intent_checksum(r)
        and r.error_class != "PermanentError"  # the platform refused it: it made nothing
    ]


def match_uploads(
    unsettled: Sequence[ItemRecord],
    found: Sequence[FoundUpload],
    taken: set[int],
    *,
    offset: float,
    window: Callable[[int | None], float],
    early: float = EARLY,
    late: float = LATE,
) -> tuple[dict[str, int], list[str]]:
    """Pure: source file key -> the target file to adopt for it, and the keys left in doubt.

    An intent sent at our time t (`upload_started`) can only have made a file created, by the
    platform's clock, within [t + offset - early, t + offset + window(its bytes) + late], with the
    same bytes and name, not already given to a file by the state (`taken`). It is adopted when
    it has exactly one such candidate and that file is no other intent's candidate; an intent
    with several, or sharing its one, is in doubt (another job, or another file of ours with the
    same bytes and name, may have made it).
    """
    candidates: dict[str, set[int]] = {}
    for rec in unsettled:
        sent = float(rec.data.get("upload_started") or 0) + offset
        size = rec.data.get("bytes")
        last = sent + window(size if isinstance(size, int) else None) + late
        candidates[rec.key] = {
            f.id
            for f in found
            if f.id not in taken
            and (f.checksum, f.name) == (intent_checksum(rec), str(rec.data.get("name")))
            and sent - early <= f.created <= last
        }
    claims: dict[int, int] = {}
    for ids in candidates.values():
        for file_id in ids:
            claims[file_id] = claims.get(file_id, 0) + 1
    adopted: dict[str, int] = {}
    doubt: list[str] = []
    for key, ids in candidates.items():
        if len(ids) == 1 and claims[next(iter(ids))] == 1:
            adopted[key] = next(iter(ids))
        elif ids:
            doubt.append(key)
    return adopted, doubt


def adopt_uploads(
    state: StateStore,
    target_db: PlatformDB,
    store: int,
    file_ids: set[int],
    window: Callable[[int | None], float],
    events: Events,
) -> int:
    """Record as done the uploads that an earlier run sent but could not record; how many.

    `window(bytes)`: the longest an upload attempt of that many bytes can last (its wall-clock
    limit), so the latest its file can have been created after its intent.
    """
    files = state.items(ItemKind.FILE)
    unsettled = [r for r in unsettled_uploads(files) if r.source_id in file_ids]
    if not unsettled:
        return 0
    try:
        offset, uncertainty = target_db.clock_offset()
        started = min(float(r.data.get("upload_started") or 0) for r in unsettled)
        since = datetime.fromtimestamp(max(0.0, started + offset - EARLY - uncertainty), tz=timezone.utc)
        found = target_db.unclaimed_uploads(store, [str(intent_checksum(r)) for r in unsettled], since)
    except PlatformError as exc:
        events.emit(
            "warning",
            message=f"{len(unsettled)} upload(s) of an earlier run were not recorded and the target "
            f"cannot be searched for them, so they are uploaded again ({exc})",
        )
        return 0
    adopted, doubt = match_uploads(
        unsettled,
        found,
        {int(r.target_id) for r in files if r.target_id},
        offset=offset,
        window=window,
        early=EARLY + uncertainty,
        late=LATE + uncertainty,
    )
    for key, target_id in adopted.items():
        state.mark_done(ItemKind.FILE, key, "upload", target_id=target_id, data={"adopted": True})
    if adopted:
        events.emit(
            "info",
            message=f"{len(adopted)} file(s) that an earlier run uploaded without recording were "
            "found on the target and are used as they are",
        )
    if doubt:
        events.emit(
            "warning",
            message=f"{len(doubt)} upload(s) of an earlier run were not recorded, and the target holds "
            "more than one file that could be each (the same bytes and name, sent at about the same "
            "time, perhaps by another job): they are uploaded again rather than taking a file that "
            "may be another's",
        )
    return len(adopted)

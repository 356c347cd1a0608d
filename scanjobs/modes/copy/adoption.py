"""Adoption: a file or scan an earlier run made without recording it is found and used, not made again.

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

A create carries a request uid too, and the platform returns the first scan to a repeated uid,
but nobody says for how long it remembers one. So before a create that a crash left unsettled
(its uid recorded, no target id) is sent again, the next run looks in the target store for a
scan made of exactly the files this copy uploaded for it: those files belong to this copy alone
(each upload is its own file), so such a scan is the one that create made. In doubt (two
unsettled creates of the same files) the create is sent again with its uid.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone

from scanjobs.errors import PlatformError
from scanjobs.events import Events
from scanjobs.platform.db import FoundScan, FoundUpload, PlatformDB, SourceScan
from scanjobs.state import ItemKind, ItemRecord, StateStore, Status

__all__ = [
    "UNSETTLED",
    "unsettled_uploads",
    "intent_checksum",
    "match_uploads",
    "adopt_uploads",
    "unsettled_creates",
    "match_creates",
    "adopt_creates",
]

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


# The statuses an unsettled upload's record can have (`unsettled_uploads`).
UNSETTLED = (Status.RUNNING, Status.FAILED)


def unsettled_uploads(records: Sequence[ItemRecord]) -> list[ItemRecord]:
    """File records whose upload was sent (or may have been) without its answer being recorded:
    an upload intent left by a kill, or an upload failed in a way that does not prove the
    platform made nothing (a read timeout, a broken answer)."""
    return [
        r
        for r in records
        if r.step == "upload"
        and r.status in UNSETTLED
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
    # only the unsettled ones are read whole: a finished job has hundreds of thousands of files
    maybe = state.items(ItemKind.FILE, status=UNSETTLED)
    unsettled = [r for r in unsettled_uploads(maybe) if r.source_id in file_ids]
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
        {int(r.target_id) for r in state.items(ItemKind.FILE) if r.target_id},
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


def unsettled_creates(
    scans: Sequence[SourceScan], records: Mapping[str, ItemRecord], files: Mapping[int, int]
) -> dict[str, list[int]]:
    """Pure: source scan key -> the target files its create sent, for each create that may have
    happened unrecorded (a request uid recorded, no target id). The files are those its intent
    recorded; an intent of an earlier version recorded none, and they are then the scan's source
    files as the state uploaded them (`files`: source file id -> target file id), which is what
    that create sent: a file is uploaded once, and a create waits for all of its files."""
    out: dict[str, list[int]] = {}
    for scan in scans:
        rec = records.get(str(scan.id))
        if rec is None or not rec.request_uid or rec.target_id or rec.status == Status.DONE:
            continue
        recorded = rec.data.get("target_files")
        if isinstance(recorded, list) and recorded and all(type(f) is int for f in recorded):
            out[rec.key] = list(recorded)
        elif scan.files and all(ref.file_id in files for ref in scan.files):
            out[rec.key] = [files[ref.file_id] for ref in scan.files]
    return out


def match_creates(
    unsettled: Mapping[str, Sequence[int]], found: Sequence[FoundScan], taken: set[int]
) -> tuple[dict[str, int], list[str], dict[str, list[int]]]:
    """Pure: source scan key -> the target scan to adopt for it, the keys left in doubt, and for
    an adopted key the other scans made of the same files (duplicates an earlier run made).

    A candidate is a scan made of exactly the files a create sent (in any order), that the state
    does not already give to a scan (`taken`). Its files belong to this copy alone, so it is
    that create's, unless another unsettled create sent the same files: then both are in doubt.
    Of several candidates (a create sent twice to a platform that had forgotten its uid) the
    first made is adopted.
    """
    candidates = {
        key: sorted(s.id for s in found if s.id not in taken and sorted(s.files) == sorted(sent))
        for key, sent in unsettled.items()
        if sent
    }
    claims = Counter(scan_id for ids in candidates.values() for scan_id in ids)
    adopted: dict[str, int] = {}
    doubt: list[str] = []
    duplicates: dict[str, list[int]] = {}
    for key, ids in candidates.items():
        if not ids:
            continue
        if any(claims[scan_id] > 1 for scan_id in ids):
            doubt.append(key)
            continue
        adopted[key] = ids[0]
        if ids[1:]:
            duplicates[key] = ids[1:]
    return adopted, doubt, duplicates


def adopt_creates(
    state: StateStore,
    target_db: PlatformDB,
    store: int,
    scans: Sequence[SourceScan],
    records: Mapping[str, ItemRecord],
    events: Events,
) -> set[int]:
    """Record as done the creates of `scans` that an earlier run made but could not record (the
    scan found on the target); their source scan ids. The others are sent again with their uid.

    `records` are the state's scan records as the run's plan read them (each read of them all
    costs a run's start as much as a few round trips once a job has thousands of scans).
    """
    uploaded = {
        int(r.key): int(r.target_id) for r in state.items(ItemKind.FILE, status=Status.DONE) if r.target_id
    }
    unsettled = unsettled_creates(scans, records, uploaded)
    if not unsettled:
        return set()
    try:
        found = target_db.scans_using_files(store, [f for sent in unsettled.values() for f in sent])
    except PlatformError as exc:
        events.emit(
            "warning",
            message=f"{len(unsettled)} create(s) of an earlier run were not recorded and the target "
            f"cannot be searched for them, so they are sent again with their request uid, which "
            f"the platform may no longer remember ({exc})",
        )
        return set()
    taken = {int(r.target_id) for r in records.values() if r.target_id}
    adopted, doubt, duplicates = match_creates(unsettled, found, taken)
    for key, target_id in adopted.items():
        state.mark_done(
            ItemKind.SCAN,
            key,
            "create",
            target_id=target_id,
            data={"target_files": unsettled[key], "adopted": True},
        )
    if adopted:
        events.emit(
            "info",
            message=f"{len(adopted)} scan(s) that an earlier run created without recording were "
            "found on the target (made of this copy's uploads) and are used as they are",
        )
    for key, extra in duplicates.items():
        events.emit(
            "warning",
            message=f"scan {key}: target scan(s) {', '.join(map(str, extra))} are made of the same "
            f"uploads as {adopted[key]}, which is used: duplicates an earlier run made",
        )
    if doubt:
        events.emit(
            "warning",
            message=f"{len(doubt)} create(s) of an earlier run were not recorded, and the target "
            "holds scans of the same files for more than one of them: they are sent again with "
            "their request uid rather than taking a scan that may be another's",
        )
    return {int(key) for key in adopted}

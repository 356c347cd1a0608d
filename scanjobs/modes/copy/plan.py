"""The copy's pure decisions: which scans a run takes, how many to keep in flight, the request uids."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from scanjobs.jobfile.model import BatchOptions, Workers
from scanjobs.modes.base import RunOptions
from scanjobs.modes.outcome import take_new
from scanjobs.state import ItemRecord, Status

__all__ = [
    "CopyPlan",
    "UNFINISHED",
    "plan_copy",
    "ROUND_TRIPS_PER_SCAN",
    "scans_in_flight_needed",
    "batch_size_for",
    "request_uid",
    "upload_uid",
]


@dataclass(frozen=True, slots=True)
class CopyPlan:
    """What this run does, in order: unfinished work first, then failures, then new scans;
    and what it leaves: done, failed for good (`final`), new scans past --limit (`deferred`)."""

    resume: tuple[int, ...]
    retry: tuple[int, ...]
    new: tuple[int, ...]
    already_done: tuple[int, ...]
    deferred: int  # new scans left for a later run by --limit
    final: tuple[int, ...] = ()  # permanent failures a plain rerun leaves as they are

    @property
    def todo(self) -> tuple[int, ...]:
        return self.resume + self.retry + self.new


# The scans whose whole records a run or a plan reads: the done ones are known by their ids.
UNFINISHED = (Status.PENDING, Status.RUNNING, Status.FAILED)


def plan_copy(
    selected: Sequence[int],
    records: Mapping[str, ItemRecord],
    *,
    done_ids: AbstractSet[int] = frozenset(),
    limit: int | None = None,
    retry_failed_only: bool = False,
) -> CopyPlan:
    """Pure: the selection and what the state holds -> the work of this run.

    `done_ids` are scans the state records as done, given instead of their records (a rerun of
    a finished 100k-scan job need not build 100k records to find nothing to do).
    A permanent failure is retried only by --retry-failed (`retry_failed_only`).
    """
    resume, retry, new, done, final = [], [], [], [], []
    for scan_id in selected:
        rec = records.get(str(scan_id))
        status = Status.DONE if scan_id in done_ids else rec.status if rec else Status.PENDING
        if status == Status.DONE:
            done.append(scan_id)
        elif rec is not None and rec.final and not retry_failed_only:
            final.append(scan_id)
        elif status == Status.FAILED:
            retry.append(scan_id)
        elif status == Status.RUNNING or (rec is not None and rec.request_uid):
            resume.append(scan_id)
        else:
            new.append(scan_id)
    taken, deferred = take_new(new, RunOptions(retry_failed=retry_failed_only, limit=limit))
    return CopyPlan(tuple(resume), tuple(retry), tuple(taken), tuple(done), deferred, tuple(final))


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


# Little's law gives the scans in flight that keep the slowest stage busy when every round trip
# takes the same time; real latencies vary, and a scan waiting for its slowest file holds its
# place, so the default keeps twice as many (measured: tests/bench/bench_copy.py).
HEADROOM = 2
MAX_DEFAULT_IN_FLIGHT = 256  # a thread each


def batch_size_for(batch: BatchOptions, files_per_scan: float) -> int:
    """The scans a copy keeps in flight: `batch.size` when the job gives it, else what keeps
    its workers busy for scans of that many files."""
    if batch.size is not None:
        return batch.size
    return min(MAX_DEFAULT_IN_FLIGHT, HEADROOM * scans_in_flight_needed(batch.workers, files_per_scan))


def request_uid(epoch: str, fingerprint: str, source_api: str, scan_id: int) -> str:
    """The idempotency key of one scan's create: stable across resumes, new after --restart."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"scanjobs:{epoch}:{fingerprint}:{source_api}:{scan_id}"))


def upload_uid(epoch: str, fingerprint: str, source_api: str, file_id: int) -> str:
    """The idempotency key of one source file's upload, derived like the create's (`file:` keeps
    it apart from the uid of the scan with the same id)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"scanjobs:{epoch}:{fingerprint}:{source_api}:file:{file_id}"))

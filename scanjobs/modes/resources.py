"""What every mode opens and reads: platform clients from the job, the scan selection, CSV files."""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Iterable, Sequence, Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scanjobs.cells import csv_cell
from scanjobs.events import Events
from scanjobs.fsutil import atomic_open
from scanjobs.jobfile.model import InstanceSpec, ScanJob, ScanSelection
from scanjobs.jobfile.scanlist import read_id_column
from scanjobs.platform.api import PlatformAPI
from scanjobs.platform.budget import BudgetCounts, Limits
from scanjobs.platform.db import PlatformDB
from scanjobs.platform.hedge import HedgeCounts
from scanjobs.platform.retry import RetryEvent, RetryPolicy, Timeouts

__all__ = [
    "retry_policy",
    "open_api",
    "open_db",
    "select_scan_ids",
    "read_id_column",
    "write_csv",
    "request_workers",
    "Stopwatch",
    "Traffic",
]


def retry_policy(job: ScanJob) -> tuple[RetryPolicy, Timeouts]:
    r = job.retry
    return (
        RetryPolicy(
            attempts=r.attempts,
            initial=r.backoff.initial,
            max=r.backoff.max,
            multiplier=r.backoff.multiplier,
            jitter=r.backoff.jitter,
            deadline=r.deadline,
            retry_after_cap=r.backoff.max,
        ),
        Timeouts(connect=r.timeout.connect, read=r.timeout.read, total=r.timeout.total),
    )


def open_api(instance: InstanceSpec, job: ScanJob, events: Events, *, pool_size: int = 32) -> PlatformAPI:
    """A logged-in API client (or one whose token the platform took); retries are reported as
    `retry` events."""
    policy, timeouts = retry_policy(job)

    def on_retry(event: RetryEvent) -> None:
        events.emit(
            "retry",
            instance=instance.name,
            call=event.call,
            attempt=event.attempt,
            wait=round(event.wait, 2),
            reason=event.reason,
        )

    given = instance.limits
    settings: dict[str, Any] = {
        "retry": policy,
        "timeouts": timeouts,
        "pool_size": pool_size,
        "on_retry": on_retry,
        "limits": None
        if given is None
        else Limits(given.requests_per_second, given.concurrent_requests, given.adaptive),
    }
    if instance.token is not None:  # used as it is: no login (a two-factor account has none)
        api = PlatformAPI(instance.api_url, token=instance.token.reveal(), **settings)
    else:
        assert instance.username is not None and instance.password is not None  # InstanceSpec's rule
        api = PlatformAPI(
            instance.api_url, instance.username.reveal(), instance.password.reveal(), **settings
        )
    try:
        api.login()
    except BaseException:
        api.close()
        raise
    return api


def request_workers(workers: int, name: str) -> tuple[threading.BoundedSemaphore, ThreadPoolExecutor]:
    """An endpoint's `workers` as slots for requests on the wire (each API call holds one per
    attempt), and a pool of twice as many threads: a call waiting out a retry's backoff gives
    its slot to another instead of holding a request back."""
    return threading.BoundedSemaphore(workers), ThreadPoolExecutor(2 * workers, thread_name_prefix=name)


def open_db(instance: InstanceSpec, job: ScanJob) -> PlatformDB:
    db = instance.db
    client = PlatformDB(
        db.host, db.port, db.dbname, db.user, db.password.reveal(), connect_timeout=job.retry.timeout.connect
    )
    client.connect()
    return client


def select_scan_ids(
    selection: ScanSelection, db: PlatformDB, *, known: Set[int] = frozenset()
) -> tuple[list[int], list[int]]:
    """(existing ids in selection order, ids that do not exist on the source). Ids in `known`
    (scans already copied, say) are taken as existing without asking the database."""
    if selection.kind == "query" and selection.query is not None:
        q = selection.query
        ids = db.select_scan_ids(store=q.store, date_from=q.date_from, date_to=q.date_to, status=q.status)
        return (ids[: q.limit] if q.limit else ids), []
    wanted = list(selection.ids) if selection.kind == "ids" else read_id_column(selection.file or Path())
    missing = set(db.missing_scan_ids([i for i in wanted if i not in known]))
    return [i for i in wanted if i not in missing], [i for i in wanted if i in missing]


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a CSV atomically; text cells from the platform cannot become formulas (`cells.py`)."""
    with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows([csv_cell(value) for value in row] for row in rows)


@dataclass
class Stopwatch:
    started: float = 0.0

    def __post_init__(self) -> None:
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


class Traffic:
    """What a run's API clients did beyond their calls, kept past their close for the summary:
    hedged reads (hedge.py), and what each limited instance's request budget did (budget.py)."""

    def __init__(self) -> None:
        self.hedges = HedgeCounts()
        self.budgets: dict[str, BudgetCounts] = {}

    def keep(self, instance: InstanceSpec, api: PlatformAPI) -> None:
        """Add `api`'s figures (call it before closing the client)."""
        self.hedges += api.hedge_counts
        counts = api.budget_counts
        if counts is not None:
            self.budgets[instance.name] = counts

    def fields(self) -> dict[str, Any]:
        """For the summary event: `hedges` {reads, sent, won}, and `throttled` per limited instance
        {decreases, pauses, lowest_rate, lowest_concurrency}."""
        hedges = self.hedges
        fields: dict[str, Any] = {"hedges": {"reads": hedges.reads, "sent": hedges.sent, "won": hedges.won}}
        if self.budgets:
            fields["throttled"] = {
                name: {
                    "decreases": c.decreases,
                    "pauses": c.pauses,
                    "lowest_rate": c.lowest_rate,
                    "lowest_concurrency": c.lowest_concurrency,
                }
                for name, c in self.budgets.items()
            }
        return fields

    def text(self) -> str:
        """'; hedged reads: ...' and '; <instance> slowed down ...' parts of the summary line."""
        parts = []
        h = self.hedges
        if h.sent:
            share = h.sent / h.reads if h.reads else 0.0
            parts.append(
                f"hedged reads: {h.sent} sent ({share:.1%} of {h.reads} reads), {h.won} answered first"
            )
        for name, c in self.budgets.items():
            if c.decreases or c.pauses:
                lowest = [
                    f"{c.lowest_rate:g} requests/s" if c.lowest_rate is not None else "",
                    f"{c.lowest_concurrency} at once" if c.lowest_concurrency is not None else "",
                ]
                parts.append(
                    f"{name} pushed back: limits lowered {c.decreases} time(s) (to "
                    f"{', '.join(p for p in lowest if p)} at the lowest), paused {c.pauses} time(s) "
                    "by Retry-After"
                )
        return "".join(f"; {part}" for part in parts)

"""What every mode opens and reads: platform clients from the job, the scan selection, CSV files."""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Iterable, Sequence, Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanjobs.cells import csv_cell
from scanjobs.errors import StateError
from scanjobs.events import Events
from scanjobs.fsutil import atomic_open
from scanjobs.jobfile.dates import local_today
from scanjobs.jobfile.model import InstanceSpec, ScanJob, ScanQuery, ScanSelection
from scanjobs.jobfile.scanlist import read_id_column
from scanjobs.platform.budget import BudgetCounts, Limits
from scanjobs.platform.db import PlatformDB
from scanjobs.platform.hedge import HedgeCounts
from scanjobs.platform.retry import RetryEvent, RetryPolicy, Timeouts
from scanjobs.state import SELECTION_DAY, StateStore

# The HTTP client (requests and urllib3 take 80 ms to import) is loaded when a run opens the API:
# a run reaches the platform's database without it, and a rerun of a finished job never needs it.
if TYPE_CHECKING:
    from scanjobs.platform.api import PlatformAPI

__all__ = [
    "retry_policy",
    "open_api",
    "open_db",
    "select_scan_ids",
    "selection_day",
    "warn_nothing_selected",
    "why_nothing_selected",
    "read_id_column",
    "write_csv",
    "request_workers",
    "Stopwatch",
    "Traffic",
]

# The state's meta key of the day a query's relative dates count from.


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
    from scanjobs.platform.api import PlatformAPI  # lazy: see TYPE_CHECKING above

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


def selection_day(selection: ScanSelection, state: StateStore | None, events: Events | None = None) -> date:
    """The day a query's relative dates (`-7d`, `today`) count from: the one the job's state
    keeps, else the machine's local date. A run (`events` given) records it the first time a
    relative date needs it, so that a run resumed the next day selects the same scans, and says
    which dates the query stands for. `--restart` starts a new state, which counts afresh."""
    query = selection.query
    recorded = state.meta(SELECTION_DAY) if state is not None else None
    try:
        day = date.fromisoformat(recorded) if recorded else local_today()
    except ValueError:
        raise StateError(
            f"the state records {str(recorded)[:40]!r} as the day the query's dates count from, which is "
            "not a date",
            hint="run with --restart to count from today (the old state is kept aside)",
        ) from None
    if events is not None and state is not None and query is not None and query.relative:
        if not recorded:
            state.set_meta(SELECTION_DAY, day.isoformat())
        since = "today" if day == local_today() else f"{day}, the day this job's first run counted from"
        events.emit("info", message=f"scans.query: {query.describe(day)}, counted from {since}")
    return day


def warn_nothing_selected(
    events: Events, selection: ScanSelection, db: PlatformDB, today: date, selected: Sequence[int]
) -> None:
    """A query that selected no scan says why (`why_nothing_selected`)."""
    if selection.query is not None and not selected:
        events.emit("warning", message=why_nothing_selected(selection.query, db, today))


def select_scan_ids(
    selection: ScanSelection, db: PlatformDB, *, today: date, known: Set[int] = frozenset()
) -> tuple[list[int], list[int]]:
    """(existing ids in selection order, ids that do not exist on the source). A query's
    relative dates count from `today` (`selection_day`). Ids in `known` (scans already copied,
    say) are taken as existing without asking the database."""
    if selection.kind == "query" and selection.query is not None:
        q = selection.query
        date_from, date_to = q.dates(today)
        ids = db.select_scan_ids(stores=q.stores, date_from=date_from, date_to=date_to, status=q.status)
        return (ids[: q.limit] if q.limit else ids), []
    wanted = list(selection.ids) if selection.kind == "ids" else read_id_column(selection.file or Path())
    missing = set(db.missing_scan_ids([i for i in wanted if i not in known]))
    return [i for i in wanted if i not in missing], [i for i in wanted if i in missing]


def why_nothing_selected(query: ScanQuery, db: PlatformDB, today: date) -> str:
    """The warning for a query that selected no scan: what it asked for, and what each of its
    stores has (how many scans, with which status, created when)."""
    found = {s.store_id: s for s in db.store_scan_dates(query.stores, query.status)}
    parts = []
    for store in query.stores:
        have = found.get(store)
        if have is None:
            parts.append(f"store {store} has no scans")
        elif have.with_status == 0:
            parts.append(
                f"store {store} has {have.scans} scan(s), none with status {query.status} "
                f"(created {have.first_created} to {have.last_created})"
            )
        else:
            parts.append(
                f"store {store} has {have.with_status} scan(s) with status {query.status}, "
                f"created {have.first_created} to {have.last_created}"
            )
    return f"scans.query selected no scans: it asks for {query.describe(today)}; " + "; ".join(parts)


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

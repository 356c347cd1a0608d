"""The shared collector of `scanjobs plan`: read-only checks, each reported, none stopping the others.

Each mode's own plan (copy/preflight.py, download/preflight.py, analyze/preflight.py) asks its
questions through a `Preflight` and returns its `PlanReport`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Set
from typing import Any, TypeVar

from scanjobs.errors import ExitCode, PlatformError, ScanjobsError
from scanjobs.events import Events
from scanjobs.jobfile.model import InstanceSpec, Job, ScanJob
from scanjobs.modes.base import PlanReport
from scanjobs.modes.reads import ColumnCheck, Reads, check_columns
from scanjobs.modes.resources import open_api, open_db, select_scan_ids, selection_day, why_nothing_selected
from scanjobs.platform.db import PlatformDB, ScanFileRef
from scanjobs.state import ItemKind, StateStore, Status

__all__ = ["Preflight"]

T = TypeVar("T")


class Preflight:
    """Collects checks; a failed check is reported and the others still run."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.report = PlanReport(
            job=str(job.path),
            mode=job.mode,
            lines=[f"plan for {job.path.name} ({job.mode} job {job.name!r})"],
        )
        self.columns: dict[str, ColumnCheck] = {}  # per side, the databases that passed

    @property
    def scan_job(self) -> ScanJob:
        """The job, for the checks of a job that reads the platform (a compare job reads none)."""
        if not isinstance(self.job, ScanJob):
            raise TypeError(f"a {self.job.mode} job reads no platform")
        return self.job

    @property
    def lines(self) -> list[str]:
        return self.report.lines

    @property
    def facts(self) -> dict[str, Any]:
        return self.report.facts

    def worsen(self, code: ExitCode, reason: str | None = None) -> None:
        self.report.worsen(code, reason)

    def check(self, label: str, func: Callable[[], T]) -> T | None:
        try:
            value = func()
        except ScanjobsError as exc:
            reason = f"{label}: {str(exc).splitlines()[0]}"
            self.lines.append(f"  FAIL {reason}")
            self.worsen(exc.exit_code, reason)
            return None
        self.lines.append(
            f"  ok   {label}"
            + (f": {value}" if isinstance(value, (str, int)) and not isinstance(value, bool) else "")
        )
        return value

    def verdict(self, ok: bool, label: str) -> None:
        """A check whose answer is known already: an `ok` or `FAIL` line."""
        self.lines.append(f"  {'ok  ' if ok else 'FAIL'} {label}")

    def note(self, text: str) -> None:
        self.lines.append(f"       {text}")

    def login(self, instance: InstanceSpec, events: Events) -> None:
        def go() -> str:
            open_api(instance, self.scan_job, events).close()
            return instance.api_url

        self.check(f"API login to {instance.name}", go)
        limits = instance.limits
        if limits is not None:
            bounds = [
                f"{limits.requests_per_second:g} requests/s" if limits.requests_per_second else "",
                f"{limits.concurrent_requests} at once" if limits.concurrent_requests else "",
            ]
            self.note(
                f"{instance.name} is limited to {' and '.join(b for b in bounds if b)} over all its "
                "requests"
                + (" (lowered while it pushes back)" if limits.adaptive else " (fixed: not adaptive)")
            )

    def database(self, reads: Reads) -> PlatformDB | None:
        """The database of `reads.instance`, connected and holding every table and column the
        job reads there (the check a run starts with); None, and a FAIL line, otherwise."""
        instance = reads.instance
        db = self.check(f"database of {instance.name}", lambda: open_db(instance, self.scan_job))
        if db is None:
            return None

        def has_columns() -> ColumnCheck:
            check = check_columns(db, reads)
            if check.missing:
                raise PlatformError(f"missing {check.missing.describe()}")
            return check

        check = self.check(f"tables and columns read on {instance.name}", has_columns)
        if check is None:
            db.close()  # its data is not read: the queries would fail on what it lacks
            return None
        self.columns[reads.side] = check
        for note in check.notes():
            self.note(note)
        return db

    def state_counts(self, state: StateStore | None, kind: ItemKind) -> dict[Status, int]:
        counts = state.counts().by_status(kind) if state else {}
        if state is not None and any(
            r.final for r in state.items(kind, status=Status.FAILED, selected_only=True)
        ):
            self.worsen(ExitCode.PARTIAL)  # failed for good: a plain run leaves them, and exits 1
        self.facts["state"] = {str(s.value): n for s, n in counts.items()}
        if counts:
            self.note("state: " + ", ".join(f"{n} {s.value}" for s, n in sorted(counts.items())))
        else:
            self.note("state: nothing recorded yet")
        return counts

    def select(self, db: PlatformDB, state: StateStore | None, *, known: Set[int] = frozenset()) -> list[int]:
        """The scans the job selects on its source database (`known`: see select_scan_ids;
        relative dates counted from the day the state keeps, else from today, as a run would)."""
        selection = self.scan_job.scans
        today = selection_day(selection, state)
        found = self.check("scan selection", lambda: select_scan_ids(selection, db, today=today, known=known))
        if found is None:
            return []
        selected, missing = found
        self.facts.update(selected=len(selected), missing=missing)
        query = selection.query
        if query is not None and query.relative:
            self.note(f"{query.describe(today)}, counted from {today}")
        self.note(
            f"{len(selected)} scan(s) found"
            + (f", {len(missing)} not found: {', '.join(map(str, missing[:20]))}" if missing else "")
        )
        if query is not None and not selected:
            self.note(why_nothing_selected(query, db, today))
        if missing:
            self.worsen(ExitCode.PARTIAL)
        return selected

    def files(self, scans: Mapping[int, Sequence[ScanFileRef]], *, of: str = "those scans") -> None:
        """The files of the scans a run takes (scan id -> its files), as the run will read them."""
        files = {ref.file_id for refs in scans.values() for ref in refs}
        empty = [scan_id for scan_id, refs in scans.items() if not refs]
        self.facts.update(files=len(files), scans_without_files=empty)
        if empty:
            self.worsen(ExitCode.PARTIAL)
        self.note(
            f"{len(files)} file(s) in {of}"
            + (
                f"; {len(empty)} scan(s) without files (will fail): {', '.join(map(str, empty[:20]))}"
                if empty
                else ""
            )
        )

"""`scanjobs plan`: read-only questions to the platform, and what a run would do."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from scanjobs.errors import ExitCode, ScanjobsError
from scanjobs.events import Events
from scanjobs.modes.common import open_api, open_db, select_scan_ids
from scanjobs.jobfile.model import InstanceSpec, Job
from scanjobs.state import StateStore

__all__ = ["preflight_copy", "preflight_download", "preflight_analyze", "Preflight"]

T = TypeVar("T")


class Preflight:
    """Collects checks; a failed check is reported and the others still run."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.lines: list[str] = [f"plan for {job.path.name} ({job.mode} job {job.name!r})"]
        self.facts: dict[str, Any] = {}
        self.exit_code = ExitCode.OK

    def check(self, label: str, func: Callable[[], T]) -> T | None:
        try:
            value = func()
        except ScanjobsError as exc:
            self.lines.append(f"  FAIL {label}: {str(exc).splitlines()[0]}")
            self.exit_code = max(self.exit_code, exc.exit_code)
            return None
        self.lines.append(
            f"  ok   {label}"
            + (f": {value}" if isinstance(value, (str, int)) and not isinstance(value, bool) else "")
        )
        return value

    def note(self, text: str) -> None:
        self.lines.append(f"       {text}")

    def login(self, instance: InstanceSpec, events: Events) -> None:
        def go() -> str:
            open_api(instance, self.job, events).close()
            return instance.api_url

        self.check(f"API login to {instance.name}", go)

    def result(self) -> dict[str, Any]:
        return {
            "job": str(self.job.path),
            "mode": self.job.mode,
            "ok": self.exit_code == ExitCode.OK,
            "exit_code": int(self.exit_code),
            "facts": self.facts,
            "lines": self.lines,
        }


def _state_line(pf: Preflight, state: StateStore | None, kind: str) -> dict[str, int]:
    counts = state.counts().get(kind, {}) if state else {}
    pf.facts["state"] = counts
    if counts:
        pf.note("state: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    else:
        pf.note("state: nothing recorded yet")
    return counts


def _select(pf: Preflight, events: Events) -> tuple[list[int], Any]:
    db = pf.check(f"database of {pf.job.source.name}", lambda: open_db(pf.job.source, pf.job))
    if db is None:
        return [], None
    found = pf.check("scan selection", lambda: select_scan_ids(pf.job.scans, db))
    if found is None:
        return [], db
    selected, missing = found
    pf.facts.update(selected=len(selected), missing=missing)
    pf.note(
        f"{len(selected)} scan(s) found"
        + (f", {len(missing)} not found: {', '.join(map(str, missing[:20]))}" if missing else "")
    )
    if missing:
        pf.exit_code = max(pf.exit_code, ExitCode.PARTIAL)
    return selected, db


def _files(pf: Preflight, db: Any, ids: Sequence[int]) -> None:
    scans = db.scans_with_files(list(ids)) if ids else []
    files = {ref.file_id for s in scans for ref in s.files}
    empty = [s.id for s in scans if not s.files]
    pf.facts.update(files=len(files), scans_without_files=empty)
    pf.note(
        f"{len(files)} file(s) in those scans"
        + (
            f"; {len(empty)} scan(s) without files (will fail): {', '.join(map(str, empty[:20]))}"
            if empty
            else ""
        )
    )


def preflight_copy(job: Job, state: StateStore | None, events: Events) -> dict[str, Any]:
    from scanjobs.modes.copy import plan_copy, scans_in_flight_needed, unsettled_uploads

    assert job.target is not None and job.target.store is not None
    pf = Preflight(job)
    pf.login(job.source, events)
    pf.login(job.target.instance, events)
    selected, db = _select(pf, events)
    target = job.target
    target_db = pf.check(f"database of {target.instance.name}", lambda: open_db(target.instance, job))
    if target_db is not None:
        store = int(target.store or 0)
        exists = target_db.store_exists(store)
        pf.lines.append(
            f"  {'ok  ' if exists else 'FAIL'} target store {store} "
            f"{'exists' if exists else 'does not exist'} on {job.target.instance.name}"
        )
        if not exists:
            pf.exit_code = max(pf.exit_code, ExitCode.INVALID)
        target_db.close()
    records = {r.key: r for r in state.items("scan")} if state else {}
    _state_line(pf, state, "scan")
    unsettled = unsettled_uploads(state.items("file")) if state else []
    if unsettled:
        pf.note(
            f"{len(unsettled)} upload(s) of an earlier run were sent but not recorded: a run looks "
            "for them in the target store before uploading them again"
        )
    if db is not None:
        plan = plan_copy(selected, records)
        todo = list(plan.todo)
        _files(pf, db, selected)
        db.close()
        if selected:
            per_scan = pf.facts["files"] / len(selected)
            needed = scans_in_flight_needed(job.batch.workers, per_scan)
            if job.batch.size < needed:
                pf.note(
                    f"batch.size {job.batch.size} keeps fewer scans in flight than the workers can "
                    f"serve: with {per_scan:.1f} file(s) a scan, {needed} keep them busy; at "
                    f"{job.batch.size} the copy runs at most {job.batch.size / needed:.0%} as fast"
                )
        pf.facts.update(
            todo=len(todo),
            already_done=len(plan.already_done),
            resume=len(plan.resume),
            retry=len(plan.retry),
        )
        pf.lines.append(
            f"a run would copy {len(todo)} scan(s) (resume {len(plan.resume)}, retry "
            f"{len(plan.retry)}, new {len(plan.new)}); {len(plan.already_done)} already done; "
            f"strategy {job.copy.strategy}, into store {job.target.store} of "
            f"{job.target.instance.name}; then " + ("analysis" if job.analysis.enabled else "no analysis")
        )
    return pf.result()


def preflight_download(job: Job, state: StateStore | None, events: Events) -> dict[str, Any]:
    pf = Preflight(job)
    pf.login(job.source, events)
    selected, db = _select(pf, events)
    counts = _state_line(pf, state, "image")
    if db is not None:
        _files(pf, db, selected)
        db.close()
        pf.lines.append(
            f"a run would download the files of {len(selected)} scan(s) into {job.output} "
            f"({counts.get('done', 0)} file(s) already there)"
        )
    return pf.result()


def preflight_analyze(job: Job, pairs: Sequence[tuple[int, int | None]], events: Events) -> dict[str, Any]:
    assert job.target is not None
    pf = Preflight(job)
    copied = [t for _, t in pairs if t is not None]
    pf.note(f"{len(pairs)} pair(s), {len(copied)} with a target scan")
    db = pf.check(f"database of {job.source.name}", lambda: open_db(job.source, job))
    if db is not None:
        db.close()
    target = job.target
    target_db = pf.check(f"database of {target.instance.name}", lambda: open_db(target.instance, job))
    if target_db is not None:
        status = target_db.processing_status(copied)
        done = sum(1 for s in status.values() if s.processed)
        pf.note(f"{done} of {len(copied)} target scan(s) processed so far")
        target_db.close()
    pf.lines.append(f"a run would compare {len(pairs)} pair(s) and write the reports into {job.output}")
    return pf.result()

"""What a report says about the job and run that wrote it (its Job sheet and `analysis_job.json`).

Only names, API URLs and settings: never a secret (no user name, password or token of an
instance, nothing of its database's login).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from scanjobs import __version__
from scanjobs.jobfile.model import AnalyzeJob, CopyJob, InstanceSpec, ScanSelection
from scanjobs.state import StateStore

__all__ = ["RunTimes", "current_run", "report_metadata", "selection_as_written"]

RunTimes = tuple[int | None, float | None]  # (run id, started_at) as the state records them


def _when(timestamp: float | None) -> str | None:
    """A time as ISO 8601 in UTC with its offset (`2026-12-02T02:41:42+00:00`), or None."""
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat(timespec="seconds")


def current_run(state: StateStore) -> RunTimes:
    """The id and start of the run going on (the last one the state recorded)."""
    runs = state.runs()
    if not runs:
        return None, None
    last = runs[-1]
    return int(last["id"]), float(last["started_at"])


def _instance(spec: InstanceSpec) -> dict[str, Any]:
    return {"name": spec.name, "api_url": spec.api_url}


def selection_as_written(scans: ScanSelection) -> dict[str, Any]:
    """The job's `scans` section: its kind and what it names (ids, the query, or the file)."""
    if scans.kind == "ids":
        return {"kind": "ids", "count": len(scans.ids), "ids": list(scans.ids)}
    if scans.kind == "query" and scans.query is not None:
        q = scans.query
        dates = {"from": q.date_from, "to": q.date_to}  # as written: `-7d` stays `-7d`
        return {
            "kind": "query",
            "stores": list(q.stores),
            **{k: (None if v is None else v.text) for k, v in dates.items()},
            "status": q.status,
            "limit": q.limit,
        }
    return {"kind": scans.kind, "file": str(scans.file) if scans.file is not None else None}


def report_metadata(
    job: CopyJob | AnalyzeJob,
    run: RunTimes,
    *,
    finished_at: float,
    pairs: int,
    rows: int,
    scans: int,
    reanalyze: bool = False,
) -> dict[str, Any]:
    """The metadata of one analysis: the job, its instances and settings, the run (its start,
    and `finished`: when the reports were written, the run's last step), the figures, and the
    scanjobs version. JSON-ready: text, numbers, None, lists and mappings only."""
    run_id, started_at = run
    target: dict[str, Any] = _instance(job.target.instance)
    if isinstance(job, CopyJob):
        target["store"] = job.target.store
    return {
        "job": {
            "name": job.name,
            "file": str(job.path),
            "mode": job.mode,
            "fingerprint": job.fingerprint(),
            "output": str(job.output),
        },
        "source": _instance(job.source),
        "target": target,
        "strategy": job.copy.strategy if isinstance(job, CopyJob) else None,
        "scans": selection_as_written(job.scans),
        "run": {
            "id": run_id,
            "started": _when(started_at),
            "finished": _when(finished_at),
            "reanalyze": reanalyze,
        },
        "analysis": {"pairs": pairs, "rows": rows, "scans": scans},
        "scanjobs_version": __version__,
    }

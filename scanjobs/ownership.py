"""Which job owns an output folder: a marker file in it, claimed before a run writes anything.

Two jobs writing into one folder mix their reports (one's scan_mapping.csv, the other's
analysis), so every output folder names the one job that writes it: `.scanjobs-owner.json`
holds the job's id, its fingerprint, mode and name, and where its job file and state were.
The id is created with the job's state and kept in it (meta `job_id`), so it follows the
state, not the file's name or folder:

- the same job moved or renamed together with its state keeps its folder (the marker is
  updated to the new paths);
- a job that starts over at the same place (`--restart`, `reset`: a state with no id yet at
  the state path the marker names) takes its folder back;
- any other job is refused with the owner's name and paths, before anything is written;
- a folder without a marker (new, from before markers, or the user deleted it to hand the
  folder over) is claimed by the next job that runs.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from scanjobs.errors import JobError
from scanjobs.fsutil import atomic_open
from scanjobs.jobfile import Job
from scanjobs.state import StateStore

__all__ = ["OWNER_MARKER", "Owner", "claim_output", "read_owner", "refusal_of"]

OWNER_MARKER = ".scanjobs-owner.json"
_JOB_ID = "job_id"  # the state's meta key
_FORMAT = 1
_MAX_BYTES = 64 * 1024  # a marker is a few hundred bytes: anything bigger is not ours


@dataclass(frozen=True, slots=True)
class Owner:
    """The job that writes an output folder, as its marker records it."""

    job_id: str
    fingerprint: str
    mode: str
    name: str
    job: str  # the job file, resolved
    state: str  # the job's state file, resolved

    def describe(self) -> str:
        return f"{self.mode} job {self.name!r} ({self.job})"


def _unreadable(marker: Path, why: str) -> JobError:
    return JobError(
        f"cannot tell which job owns the output folder {marker.parent}: {marker.name} {why}",
        hint=f"if the folder is this job's, delete {marker}; otherwise give this job another output",
    )


def read_owner(folder: Path) -> Owner | None:
    """The owner recorded in `folder` (None without a marker); JobError for a marker that is
    not one (a directory, a device, too big, not our JSON)."""
    marker = folder / OWNER_MARKER
    if not marker.exists() and not marker.is_symlink():
        return None
    if not marker.is_file():  # a FIFO would block the read, a directory cannot be read
        raise _unreadable(marker, "is not a file")
    try:
        with open(marker, "rb") as fh:
            data = fh.read(_MAX_BYTES + 1)
    except OSError as exc:
        raise _unreadable(marker, f"cannot be read ({exc.strerror})") from None
    try:
        if len(data) > _MAX_BYTES:
            raise ValueError("too big")
        raw = json.loads(data.decode("utf-8"))
        if not isinstance(raw, dict) or raw.get("format") != _FORMAT:
            raise ValueError("not a marker")
        values: dict[str, str] = {}
        for field in fields(Owner):
            value = raw.get(field.name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"no {field.name}")
            values[field.name] = value
        return Owner(**values)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _unreadable(marker, "is not a scanjobs owner marker") from None


def _owner_for(job: Job, state: StateStore, job_id: str) -> Owner:
    return Owner(
        job_id=job_id,
        fingerprint=job.fingerprint(),
        mode=job.mode,
        name=job.name,
        job=str(job.path.resolve()),
        state=str(state.path.resolve()),
    )


def refusal_of(job: Job, state: StateStore | None) -> JobError | None:
    """Why a run of `job` (with this state, None before its first run) would be refused its
    output folder, or None; reads only (what `plan` says)."""
    folder = job.output
    if folder.exists() and not folder.is_dir():
        return JobError(f"cannot create the output folder {folder}: it is a file", hint=_CHECK_OUTPUT)
    try:
        recorded = read_owner(folder) if folder.is_dir() else None
    except JobError as exc:
        return exc
    job_id = state.meta(_JOB_ID) if state is not None else None
    if recorded is None or recorded.job_id == job_id:
        return None
    my_state = str(job.state_path.resolve())
    if job_id is None and recorded.state == my_state:  # starting over (--restart, reset)
        return None
    return JobError(
        f"the output folder {folder} belongs to another job: {recorded.describe()}; "
        "two jobs in one folder would mix their reports",
        hint=f"give this job its own output; if that job was moved or renamed to this "
        f"one, move its state with it ({recorded.state} to {my_state}); to hand the "
        f"folder over to this job, delete {folder / OWNER_MARKER}",
    )


_CHECK_OUTPUT = "check output: in the job file"


def claim_output(job: Job, state: StateStore) -> Owner:
    """Make `job.output` this job's folder (creating it), or refuse (JobError, exit 2) one that
    another job owns. Writes the marker only when what it records changes."""
    folder = job.output
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JobError(
            f"cannot create the output folder {folder}: {exc.strerror}", hint=_CHECK_OUTPUT
        ) from None
    refused = refusal_of(job, state)
    if refused is not None:
        raise refused
    recorded = read_owner(folder)
    job_id = state.meta(_JOB_ID)
    me = _owner_for(job, state, job_id or str(uuid.uuid4()))
    if job_id is None:
        state.set_meta(_JOB_ID, me.job_id)
    if recorded != me:
        with atomic_open(folder / OWNER_MARKER, "w", encoding="utf-8") as fh:
            json.dump({"format": _FORMAT, **asdict(me)}, fh, indent=2)
            fh.write("\n")
    return me

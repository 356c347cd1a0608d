"""Output folders have one owner job: a second job is refused, the same job moved, renamed with
its state, restarted or reset keeps its folder, and a deleted marker hands the folder over
(issue 12, point 14)."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from scanjobs.errors import ExitCode, JobError
from scanjobs.jobfile import Job, load_job
from scanjobs.ownership import OWNER_MARKER, claim_output, read_owner
from scanjobs.state import StatePaths, StateStore


def write_job(folder: Path, name: str, output: str, store: int = 8) -> Job:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        version: 1
        mode: copy
        source: prod
        target: {{instance: stg, store: {store}}}
        scans: {{ids: [1, 2]}}
        output: {output}
        instances: {{prod: {{}}, stg: {{}}}}
        """),
        encoding="utf-8",
    )
    return load_job(path, environ={})


def claim(job: Job) -> None:
    state = StateStore.open(job.state_path, fingerprint=job.fingerprint())
    try:
        claim_output(job, state)
    finally:
        state.close()


def refusal(job: Job) -> JobError:
    with pytest.raises(JobError) as caught:
        claim(job)
    assert caught.value.exit_code == ExitCode.INVALID
    return caught.value


@pytest.fixture()
def shared(tmp_path: Path) -> Path:
    return tmp_path / "shared"


def test_a_second_job_is_refused_the_folder_of_the_first(tmp_path: Path, shared: Path) -> None:
    """issue 12, point 14: two jobs (here: the same settings, other scans) cannot share a folder;
    the refusal names the owner and says what to do, and changes nothing in the folder."""
    a = write_job(tmp_path, "a", str(shared))
    b = write_job(tmp_path, "b", str(shared))
    claim(a)
    marker = shared / OWNER_MARKER
    before = marker.read_bytes()
    error = refusal(b)
    assert f"output folder {shared} belongs to another job: copy job 'a' ({a.path})" in str(error)
    assert str(marker) in str(error) and str(a.state_path) in str(error)
    assert marker.read_bytes() == before
    owner = read_owner(shared)
    assert owner is not None and owner.job == str(a.path) and owner.fingerprint == a.fingerprint()
    claim(a)  # its own folder, again


def test_a_rerun_of_the_owner_writes_nothing(tmp_path: Path, shared: Path) -> None:
    """issue 12, point 14 (and 21): claiming one's own folder again leaves the marker alone."""
    a = write_job(tmp_path, "a", str(shared))
    claim(a)
    marker = shared / OWNER_MARKER
    os.utime(marker, ns=(1_000_000_000, 1_000_000_000))
    claim(a)
    assert marker.stat().st_mtime_ns == 1_000_000_000


def test_the_same_job_moved_or_renamed_with_its_state_keeps_its_folder(tmp_path: Path, shared: Path) -> None:
    """issue 12, point 14: the owner is the job's state, not the job file's path."""
    a = write_job(tmp_path, "a", str(shared))
    claim(a)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for path in StatePaths(a.state_path).existing():
        path.rename(moved / path.name.replace("a.state", "renamed.state"))
    a.path.unlink()
    renamed = write_job(moved, "renamed", str(shared))
    claim(renamed)
    owner = read_owner(shared)
    assert owner is not None and owner.job == str(renamed.path) and owner.state == str(renamed.state_path)


def test_the_same_job_starting_over_takes_its_folder_back(tmp_path: Path, shared: Path) -> None:
    """issue 12, point 14: `--restart` (state moved aside) and `reset` (state deleted) start
    a new state at the same place: the same job, so the same folder."""
    a = write_job(tmp_path, "a", str(shared))
    claim(a)
    assert StatePaths(a.state_path).move_aside() is not None  # --restart
    claim(a)
    StatePaths(a.state_path).delete()  # reset
    claim(a)
    b = write_job(tmp_path, "b", str(shared))
    refusal(b)  # a new job elsewhere is still another job


def test_a_renamed_job_without_its_state_is_another_job(tmp_path: Path, shared: Path) -> None:
    """issue 12, point 14: a job renamed without its state starts over elsewhere (a new state):
    refused, with the hint to move the state along."""
    a = write_job(tmp_path, "a", str(shared))
    claim(a)
    a.path.rename(tmp_path / "renamed.yaml")
    renamed = load_job(tmp_path / "renamed.yaml", environ={})
    error = refusal(renamed)
    assert f"move its state with it ({a.state_path} to {renamed.state_path})" in str(error)


def test_a_deleted_marker_hands_the_folder_over(tmp_path: Path, shared: Path) -> None:
    """issue 12, point 14: deleting the marker is how a user gives the folder to another job;
    the old owner is then refused, naming the new one."""
    a = write_job(tmp_path, "a", str(shared))
    b = write_job(tmp_path, "b", str(shared))
    claim(a)
    (shared / OWNER_MARKER).unlink()
    claim(b)
    assert "copy job 'b'" in str(refusal(a))


@pytest.mark.parametrize(
    "marker",
    ["not json", "[]", '{"format": 1}', '{"format": 2, "job_id": "x"}', "dir", "big", "\udcff"],
)
def test_a_marker_that_is_not_ours_is_refused_clearly(tmp_path: Path, shared: Path, marker: str) -> None:
    """issue 12, point 14: a damaged or foreign marker: exit 2 naming it, never a crash."""
    a = write_job(tmp_path, "a", str(shared))
    shared.mkdir()
    path = shared / OWNER_MARKER
    if marker == "dir":
        path.mkdir()
    elif marker == "big":
        path.write_text(json.dumps({"format": 1, "pad": "x" * 100_000}), encoding="utf-8")
    else:
        path.write_bytes(marker.encode("utf-8", "surrogateescape"))
    error = refusal(a)
    assert f"cannot tell which job owns the output folder {shared}" in str(error)
    assert f"delete {path}" in str(error)


def test_an_output_that_is_a_file_is_a_job_error(tmp_path: Path) -> None:
    """issue 12, point 14: an output path that cannot be a folder is said as such (exit 2).

    `validate` refuses it already (the loader); a file put there after the job was loaded is
    still refused when the run claims the folder."""
    a = write_job(tmp_path, "a", str(tmp_path / "taken"))
    (tmp_path / "taken").write_text("x", encoding="utf-8")
    assert "cannot create the output folder" in str(refusal(a))

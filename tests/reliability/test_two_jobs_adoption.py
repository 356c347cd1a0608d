"""Two jobs copying the same scans into the same store, each killed after an upload: each adopts
only its own unrecorded upload (or uploads again when in doubt), never the other job's."""

from __future__ import annotations

from pathlib import Path

import pytest
from copy_support import (
    FILE,
    output_of,
    query,
    read_mapping,
    run_to_end,
    scan_files,
    write_copy_job,
)
from test_crash import KILLED, SEQUENTIAL, UID_MEMORY

from scanjobs.sandbox import Sandbox

pytestmark = pytest.mark.reliability


def uploaded_ids(sb: Sandbox, store: int) -> set[int]:
    return {int(r[0]) for r in query(sb, "target", f"SELECT id FROM {FILE} WHERE store_id = %s", store)}


@pytest.mark.parametrize("memory", list(UID_MEMORY))
@pytest.mark.parametrize("failpoint", ["after_upload:1", "after_upload:2", "mid_state_write:2"])
@pytest.mark.parametrize("rerun_first", ["a", "b"])
def test_each_job_keeps_its_own_uploads(
    request: pytest.FixtureRequest, tmp_path: Path, failpoint: str, rerun_first: str, memory: str
) -> None:
    """Issue 12, point 4: adoption took the other job's file (same bytes, same name, same store).

    Issue 13, point 4: an upload sent again in doubt carries its uid; a sandbox that remembers it
    answers the job's own file, one that forgot stores another: neither is the other job's."""
    sandbox: Sandbox = request.getfixturevalue(UID_MEMORY[memory])
    scan_ids = sandbox.info["source_scan_ids"][:2]
    store = sandbox.new_target_store()
    jobs = {}
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        jobs[name] = write_copy_job(
            folder, sandbox, store=store, scan_ids=scan_ids, name=name, batch=SEQUENTIAL
        )
    uploaded_by: dict[str, set[int]] = {}
    before: set[int] = set()
    for name, job in jobs.items():
        code = run_to_end(job, env={"SCANJOBS_FAILPOINTS": failpoint})
        assert code == KILLED, output_of(job)
        now = uploaded_ids(sandbox, store)
        uploaded_by[name] = now - before  # what this job's killed run uploaded
        before = now
    for name in sorted(jobs, key=lambda n: n != rerun_first):
        assert run_to_end(jobs[name]) == 0, output_of(jobs[name])
    used: dict[str, set[int]] = {}
    for name, job in jobs.items():
        mapping = read_mapping(job)
        assert sorted(mapping) == sorted(scan_ids)
        files = scan_files(sandbox, "target", list(mapping.values()))
        used[name] = {f for fs in files.values() for f, _, _ in fs}
    assert not used["a"] & used["b"], f"a file is shared by both jobs' scans: {used}"
    for name, other in (("a", "b"), ("b", "a")):
        assert not used[name] & uploaded_by[other], f"job {name} adopted job {other}'s upload"
    # both stores' scans are whole copies of the sources (one set of scans per job in one store)
    assert (
        len(
            query(
                sandbox, "target", "SELECT 1 FROM realograms_implementation_scan WHERE store_id = %s", store
            )
        )
        == 4
    )
    if memory == "uids remembered":  # an upload sent again in doubt got its first file back
        distinct = {f for fs in scan_files(sandbox, "source", scan_ids).values() for f, _, _ in fs}
        assert len(uploaded_ids(sandbox, store)) == 2 * len(distinct), "an upload was stored twice"

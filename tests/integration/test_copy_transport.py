"""Copy mode against a platform whose answers are lost, cut short or endless (issue 12, points 5-7)."""

from __future__ import annotations

from pathlib import Path

import pytest
from copy_support import (
    assert_copied,
    read_failures,
    read_mapping,
    run_to_end,
    scan_files,
    uploads_in_store,
    write_copy_job,
)

from scanjobs.cli import main
from scanjobs.sandbox import Sandbox
from scanjobs.sandbox.faults import SCRIPTED_UPLOAD

pytestmark = pytest.mark.integration


def distinct_files(sb: Sandbox, scan_ids: list[int]) -> int:
    return len({f for files in scan_files(sb, "source", scan_ids).values() for f, _, _ in files})


def test_an_upload_stored_without_an_answer_is_adopted_by_the_rerun(
    scripted: Sandbox, tmp_path: Path
) -> None:
    """issue 12, point 5: the platform stores three uploads but their answers are lost (a dropped
    connection, a 502, a 504). The run fails those scans instead of uploading again; the rerun
    finds the stored files and uses them: each source file is uploaded exactly once."""
    store, ids = scripted.new_target_store(), scripted.info["source_scan_ids"][:12]
    # no failure window: the first run must try every file for the count below to mean anything
    batch = {"size": 10, "workers": {"download": 20, "upload": 20, "create": 10}, "max_failed_ratio": 1}
    job = write_copy_job(tmp_path, scripted, store=store, scan_ids=ids, batch=batch)
    scripted.configure(upload_stored_then_reset=1, upload_stored_then_502=1, upload_stored_then_504=1)
    assert main(["run", str(job)]) == 1
    assert all(scripted.configure()[name] == 0 for name in SCRIPTED_UPLOAD), "a fault was not served"
    failures = read_failures(job)
    assert 1 <= len(failures) <= 3
    assert {f["step"] for f in failures.values()} == {"upload"}
    assert {f["error_class"] for f in failures.values()} == {"TransientError"}
    assert uploads_in_store(scripted, store) == distinct_files(scripted, ids), "an upload was resent"

    assert main(["run", str(job)]) == 0
    assert read_failures(job) == {}
    assert_copied(scripted, job, store, ids)
    assert uploads_in_store(scripted, store) == distinct_files(scripted, ids), "each file exactly once"


@pytest.mark.parametrize("fault", ["storage_cut_short", "storage_too_long"])
def test_a_source_file_of_the_wrong_length_is_fetched_again(
    scripted: Sandbox, tmp_path: Path, fault: str
) -> None:
    """issue 12, points 6 and 7: storage answers without Content-Length that end halfway, or run
    on past the file, are retried: the target gets the source's bytes, not a cut or padded copy."""
    store, ids = scripted.new_target_store(), scripted.info["source_scan_ids"][6:10]
    job = write_copy_job(tmp_path, scripted, store=store, scan_ids=ids)
    scripted.configure(**{fault: 3})
    assert main(["run", str(job)]) == 0
    assert scripted.configure()[fault] == 0, "the fault was not served"
    assert_copied(scripted, job, store, ids)  # checksums and sizes of every file, source order
    assert uploads_in_store(scripted, store) == distinct_files(scripted, ids)


def test_a_source_that_drips_forever_fails_the_items_instead_of_hanging(
    scripted: Sandbox, tmp_path: Path
) -> None:
    """issue 12, point 7: every storage answer drips a byte every 0.2 s, forever. With a 1 s limit
    per attempt the copy ends (the subprocess timeout is only the ceiling) with the scans failed."""
    store, ids = scripted.new_target_store(), scripted.info["source_scan_ids"][10:12]
    job = write_copy_job(
        tmp_path,
        scripted,
        store=store,
        scan_ids=ids,
        retry={
            "attempts": 2,
            "backoff": {"initial": 0.05, "max": 0.1},
            "timeout": {"connect": 5, "read": 10, "total": 1},
        },
    )
    scripted.configure(storage_drip=1000, drip_seconds=0.2)
    assert run_to_end(job, timeout=120) == 1
    failures = read_failures(job)
    assert set(failures) == set(ids)
    assert {f["step"] for f in failures.values()} == {"download"}
    assert all("within 1s" in f["error"] for f in failures.values()), failures
    assert read_mapping(job) == {}
    assert uploads_in_store(scripted, store) == 0

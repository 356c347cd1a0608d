"""A state that cannot be written (disk full) stops a copy at once with exit 4; a rerun completes it."""

from __future__ import annotations

import resource
import signal
import subprocess
from pathlib import Path

import pytest
from copy_support import REPO, output_of, run_to_end, scanjobs_cmd, write_copy_job
from test_crash import CONCURRENT, assert_exactly_once

from scanjobs.sandbox import Sandbox

pytestmark = pytest.mark.reliability

# Where the state's write-ahead log outgrows RLIMIT_FSIZE: at the first uploads, around the
# first creates, a few scans in (each seen to land there; the checks hold wherever it lands).
FILE_SIZE_LIMITS = [96 * 1024, 256 * 1024, 400 * 1024]


def run_with_file_limit(job: Path, limit: int) -> int:
    """`scanjobs run JOB` with RLIMIT_FSIZE (`ulimit -f`): a write past `limit` bytes fails (EFBIG)."""

    def limit_files() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    with open(job.with_suffix(".out"), "ab") as log:
        proc = subprocess.Popen(
            scanjobs_cmd("run", str(job)),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=limit_files,
        )
    try:
        # a guard against the hang this test is about, not a measure of speed
        return proc.wait(90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"the run hung on a state it cannot write:\n{output_of(job)}") from None


@pytest.mark.parametrize("limit", FILE_SIZE_LIMITS)
def test_disk_full_stops_the_run_with_exit_4_and_a_rerun_completes(
    sandbox: Sandbox, tmp_path: Path, limit: int
) -> None:
    """Issue 12, point 1: a failed state write resolved every waiting item (no hang), stopped the
    run with exit 4 and a clear message, and reported nothing as done that was not recorded."""
    scan_ids = sandbox.info["source_scan_ids"][:12]
    store = sandbox.new_target_store()
    job = write_copy_job(tmp_path, sandbox, store=store, scan_ids=scan_ids, batch=CONCURRENT)
    code = run_with_file_limit(job, limit)
    out = output_of(job)
    assert code == 4, out
    assert "cannot write the state" in out, out
    assert "Traceback" not in out, out
    assert "internal error" not in out, out
    assert run_to_end(job) == 0, output_of(job)
    assert_exactly_once(sandbox, job, store, scan_ids)

"""A run against the sandbox never meets a job input it ends on with an internal error: each is
refused before any work, with exit 2 and its place (issue 12, point 12). The unit tests in
tests/unit/jobfile hold the cases; these prove the run takes the same road."""

from __future__ import annotations

import textwrap
from pathlib import Path

import psycopg
import pytest

from scanjobs.cli import main
from scanjobs.errors import ExitCode
from scanjobs.sandbox import Sandbox
from scanjobs.sandboxjobs import write_sandbox_instances

FAST = "{attempts: 2, backoff: {initial: 0.05, max: 0.2}}"


def _download_job(folder: Path, sandbox: Sandbox, scans: str, retry: str) -> Path:
    write_sandbox_instances(sandbox.info, folder)
    job = folder / "download.yaml"
    job.write_text(
        textwrap.dedent(f"""\
        version: 1
        mode: download
        source: sandbox-source
        scans: {scans}
        retry: {retry}
        output: images
        """),
        encoding="utf-8",
    )
    return job


@pytest.mark.parametrize(
    ("scans", "retry", "files", "said"),
    [
        ("{file: ids.csv}", FAST, {"ids.csv": b"scan_id\nSCAN\n\xc2\xb2\n"}, "scans.file"),
        ("{file: ids.csv}", FAST, {"ids.csv": b"scan_id\nSCAN\n9223372036854775808\n"}, "scans.file"),
        ("{ids: [SCAN, 9223372036854775808]}", FAST, {}, "scans.ids.1"),
        ("{ids: [SCAN]}", "{attempts: 2, timeout: {read: 1.0e+20}}", {}, "retry.timeout.read"),
        ("{ids: [SCAN]}", "{attempts: 2, timeout: {connect: .nan}}", {}, "retry.timeout.connect"),
        ("{ids: [SCAN]}", FAST, {".env": b"\n# caf\xe9\n"}, ".env: line"),
    ],
    ids=[
        "superscript-id",
        "id-past-bigint",
        "job-id-past-bigint",
        "read-timeout-1e20",
        "nan",
        "dotenv-latin-1",
    ],
)
def test_a_hostile_input_ends_the_run_with_exit_2_before_any_work(
    tmp_path: Path,
    sandbox: Sandbox,
    capsys: pytest.CaptureFixture[str],
    scans: str,
    retry: str,
    files: dict[str, bytes],
    said: str,
) -> None:
    """issue 12, point 12: each of these passed `validate` (or crashed it) and ended the run with
    exit 3, an internal error with a traceback in the job's log."""
    # a scan that exists: the run would reach the platform (SCAN stands for its id)
    with psycopg.connect(**sandbox.db("source")) as conn:
        row = conn.execute("SELECT min(id) FROM realograms_implementation_scan").fetchone()
    scan = str(row[0]) if row else "1"
    job = _download_job(tmp_path, sandbox, scans.replace("SCAN", scan), retry)
    for name, content in files.items():
        with open(tmp_path / name, "ab") as fh:  # .env: after the sandbox's secrets
            fh.write(content.replace(b"SCAN", scan.encode()))
    assert main(["run", str(job)]) == ExitCode.INVALID
    err = capsys.readouterr().err
    assert said in err and "internal error" not in err
    assert not (tmp_path / "images").exists()  # nothing was done
    assert (
        not (tmp_path / "download.state.log").exists()
        or "Traceback" not in (tmp_path / "download.state.log").read_text()
    )

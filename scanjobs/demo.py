"""`scanjobs demo`: a sandbox, two job files, their runs with progress, and where to look."""

from __future__ import annotations

import shutil
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from scanjobs.errors import ExitCode, JobError
from scanjobs.events import EventBus, make_console_sink
from scanjobs.jobfile import load_job
from scanjobs.jobrepo import SCHEMA_IN_REPO, write_schema
from scanjobs.lifecycle import RunOptions, run_job
from scanjobs.sandboxjobs import sandbox_job_text, write_sandbox_instances
from scanjobs.state import StatePaths

__all__ = ["run_demo", "demo_jobs", "claim_folder"]


def demo_jobs(jobs_dir: Path, info: dict[str, Any], scans: int) -> dict[str, Path]:
    """Write the demo's job files (they name the sandbox instances of instances.yaml beside),
    and the schema they name, in the demo's folder (its own repository of jobs)."""
    write_schema(jobs_dir.parent / SCHEMA_IN_REPO)
    ref = f"../{SCHEMA_IN_REPO.as_posix()}"
    paths = {}
    for mode, output in (("copy", "../results/copy"), ("download", "../results/images")):
        paths[mode] = jobs_dir / f"{mode}.yaml"
        text = sandbox_job_text(mode, info, scans=scans, name=f"demo-{mode}", output=output, schema_ref=ref)
        paths[mode].write_text(text, encoding="utf-8")
    return paths


MARKER = ".scanjobs-demo"


def claim_folder(folder: Path) -> None:
    """Make `folder` the demo's, or refuse: the demo starts over by deleting the results and job
    states in its folder, which in a folder of the user's would be the user's own.

    A folder is the demo's when it is new or empty, carries the marker the demo leaves, or is a
    demo folder from before the marker (its copy job is the demo's).
    """
    marker = folder / MARKER
    if marker.is_file():
        return
    if folder.exists() and not folder.is_dir():
        raise JobError(
            f"{folder} is a file, not a folder for the demo", hint="scanjobs demo --dir NEW-FOLDER"
        )
    entries = list(folder.iterdir()) if folder.is_dir() else []
    legacy = folder / "jobs" / "copy.yaml"
    if entries and not (legacy.is_file() and "\nname: demo-copy\n" in legacy.read_text(errors="replace")):
        raise JobError(
            f"{folder} is not a scanjobs demo folder: it holds files the demo did not make, and the "
            "demo deletes results and job states in its folder when it starts over",
            hint="choose a new or empty folder: scanjobs demo --dir NEW-FOLDER",
        )
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text("This folder belongs to `scanjobs demo`, which starts over in it.\n", encoding="utf-8")


def _fresh(folder: Path, jobs: dict[str, Path]) -> None:
    """The demo starts over: its sandbox is new, so old state and results would lie."""
    for job in jobs.values():
        StatePaths.for_job(job).delete()
    shutil.rmtree(folder / "results", ignore_errors=True)


def run_demo(folder: Path, *, scans: int = 12, verbosity: int = 0, keep_running: bool = False) -> int:
    from scanjobs.sandbox import Sandbox  # lazy: aiohttp and embedded PostgreSQL, only for the demo

    folder = folder.resolve()
    claim_folder(folder)
    jobs_dir = folder / "jobs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    say = print
    started = time.monotonic()
    say(f"scanjobs demo in {folder}")
    say("starting the sandbox (embedded PostgreSQL + the platform's HTTP API, two instances) ...")
    worst = ExitCode.OK
    with Sandbox(
        folder / "sandbox", scans=scans, files_per_scan=2, processing_delay=1.0, ma_accuracy=0.6, seed=42
    ) as sandbox:
        info = sandbox.info
        say(f"sandbox ready: source {sandbox.source_api}, target {sandbox.target_api}")
        write_sandbox_instances(info, jobs_dir, force=True)  # the demo's own files (claim_folder)
        jobs = demo_jobs(jobs_dir, info, scans)
        _fresh(folder, jobs)
        for title, path in (("copy with analysis", jobs["copy"]), ("download", jobs["download"])):
            say(f"\n== {title}: scanjobs run {path}")
            events = EventBus(make_console_sink(sys.stdout, verbosity=verbosity))
            try:
                code = run_job(load_job(path), RunOptions(), events)
            finally:
                events.close()
            worst = max(worst, code)
        results = folder / "results"
        say(
            textwrap.dedent(f"""
            == done in {time.monotonic() - started:.0f}s (exit {int(worst)})
            Excel report:   {results / "copy" / "analysis_with_comments.xlsx"}
            mapping CSV:    {results / "copy" / "scan_mapping.csv"}
            images:         {results / "images"}  (manifest.csv lists them with sha256)
            job files:      {jobs["copy"]}, {jobs["download"]}
            inspect:        scanjobs status {jobs["copy"]}
            run it again:   scanjobs demo --dir {folder}   (a fresh sandbox; starts over)""")
        )
        if keep_running:
            say(
                textwrap.dedent(f"""
                The sandbox keeps running until Ctrl-C (or: scanjobs sandbox down --dir {folder / "sandbox"}).
                In another terminal:
                  scanjobs run {jobs["copy"]}      # resumes: everything is done, nothing is sent
                  scanjobs plan {jobs["download"]}""")
            )
            try:
                while sandbox.proc is not None and sandbox.proc.poll() is None:
                    time.sleep(1)  # idle until Ctrl-C; the sandbox does the work
            except KeyboardInterrupt:
                say("stopping the sandbox")
    return int(worst)

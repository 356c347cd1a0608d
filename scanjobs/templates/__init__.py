"""Commented job templates for `scanjobs init` (the same files as the repository's jobs/)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from scanjobs.errors import JobError
from scanjobs.jobfile import BaseJob
from scanjobs.jobfile.loader import INSTANCES_FILE
from scanjobs.jobrepo import schema_home, write_schema
from scanjobs.sandboxjobs import write_sandbox_job

__all__ = ["template_text", "write_template"]

MODELINE = "# yaml-language-server: $schema="
_OUTPUT_LINE = re.compile(r"^output:.*$", re.MULTILINE)


def template_text(mode: str) -> str:
    return resources.files("scanjobs.templates").joinpath(f"{mode}.yaml").read_text(encoding="utf-8")


def write_template(
    mode: str, path: Path | None, *, force: bool = False, sandbox: Path | None = None
) -> tuple[Path, Path]:
    """Write the template of `mode`, its output `results/<file name>` beside it, its modeline
    naming the schema its repository keeps (`schema_home`: written there, or brought up to
    date); the job's path and the schema's.

    With `sandbox` (a `scanjobs sandbox up --dir` folder), write a small job against that sandbox
    instead, plus instances.yaml and .env beside it (merged into the user's own; see
    `write_sandbox_job`).
    """
    target = (path or Path("jobs") / f"{mode}.yaml").resolve()
    if target.name in (INSTANCES_FILE, ".env") or target.is_dir():
        # even --force: the job would replace the instances or secrets of every job beside it
        raise JobError(f"{target} is not a place for a job file; choose another name")
    if target.exists() and not force:
        raise JobError(f"{target} exists; choose another path or add --force")
    # each job its own output folder (two jobs in one would mix their reports): the folder a
    # job without `output:` gets, named after the job's file
    output = BaseJob.default_output(target)
    ref, schema = schema_home(target)
    if sandbox is not None:
        return write_sandbox_job(mode, target, sandbox, force=force, output=output), schema
    text = _OUTPUT_LINE.sub(
        f"output: {output}    # this job's own folder, relative to this file's", template_text(mode)
    )
    lines = text.splitlines(keepends=True)
    if lines and lines[0].startswith(MODELINE):
        lines[0] = f"{MODELINE}{ref}\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(lines), encoding="utf-8")
    write_schema(schema)
    return target, schema

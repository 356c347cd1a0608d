"""Commented job templates for `scanjobs init` (the same files as the repository's jobs/)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from scanjobs.errors import JobError
from scanjobs.jobfile import schema_path
from scanjobs.sandboxjobs import read_sandbox_info, sandbox_job_text, write_sandbox_instances

__all__ = ["template_text", "write_template"]

MODELINE = "# yaml-language-server: $schema="


def template_text(mode: str) -> str:
    return resources.files("scanjobs.templates").joinpath(f"{mode}.yaml").read_text(encoding="utf-8")


def write_template(mode: str, path: Path | None, *, force: bool = False, sandbox: Path | None = None) -> Path:
    """Write the template of `mode`, its modeline pointing at the installed schema.

    With `sandbox` (a `scanjobs sandbox up --dir` folder), write a small job against that sandbox
    instead, plus instances.yaml and .env beside it.
    """
    target = (path or Path("jobs") / f"{mode}.yaml").resolve()
    if target.exists() and not force:
        raise JobError(f"{target} exists; choose another path or add --force")
    if sandbox is not None:
        info = read_sandbox_info(sandbox, wait=60)
        write_sandbox_instances(info, target.parent)
        target.write_text(sandbox_job_text(mode, info), encoding="utf-8")
        return target
    schema = schema_path().resolve()
    try:
        ref = os.path.relpath(schema, target.parent)
    except ValueError:  # another drive (Windows)
        ref = str(schema)
    lines = template_text(mode).splitlines(keepends=True)
    if lines and lines[0].startswith(MODELINE):
        lines[0] = f"{MODELINE}{ref}\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(lines), encoding="utf-8")
    return target

"""A repository of job files: which files under a folder are jobs, and the schema their modelines name."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from scanjobs.fsutil import atomic_path, same_bytes
from scanjobs.jobfile import schema_path
from scanjobs.jobfile.loader import INSTANCES_FILE

__all__ = [
    "JobFiles",
    "SCHEMA_IN_REPO",
    "find_job_files",
    "is_job_file",
    "repository_root",
    "schema_home",
    "write_schema",
]

SCHEMA_IN_REPO = Path("schemas") / "job.schema.json"
"""Where a job repository keeps its copy of the schema, from its root (as this repository does)."""

JOB_SUFFIXES = (".yaml", ".yml")
# A job file says its mode at the top level; other YAML in a repository (CI workflows,
# .pre-commit-config.yaml, instances.yaml) does not.
_MODE_KEY = re.compile(rb"^mode[ \t]*:", re.MULTILINE)


def is_job_file(path: Path) -> bool:
    """A *.yaml or *.yml file, not instances.yaml, with a top-level `mode:` key."""
    if path.suffix not in JOB_SUFFIXES or path.name == INSTANCES_FILE or not path.is_file():
        return False
    try:
        return _MODE_KEY.search(path.read_bytes()) is not None
    except OSError:
        return True  # unreadable: the loader says why


@dataclass(frozen=True, slots=True)
class JobFiles:
    """The job files some paths name, and the YAML files among them that are not jobs."""

    jobs: list[Path]
    skipped: list[Path]


def _under(folder: Path) -> Iterable[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # .git, .venv, .pre-commit...
        for name in sorted(files):
            if name.endswith(JOB_SUFFIXES):
                yield Path(root) / name


def find_job_files(paths: Iterable[Path], *, jobs_only: bool = False) -> JobFiles:
    """Expand `paths`: a folder stands for every job file under it (recursively, hidden folders
    left out); a file is taken as it is given, unless `jobs_only`, which skips a file that is
    not a job and reads an instances.yaml as the jobs beside it (which use its instances)."""
    jobs: dict[Path, None] = {}  # ordered, without repeats
    skipped: list[Path] = []
    for path in paths:
        if path.is_dir():
            candidates, explicit = list(_under(path)), False
        elif jobs_only and path.name == INSTANCES_FILE:
            candidates, explicit = sorted(p for p in path.parent.glob("*.y*ml") if p.is_file()), False
        else:
            candidates, explicit = [path], not jobs_only
        for candidate in candidates:
            if explicit or is_job_file(candidate):
                jobs[candidate] = None
            elif candidate.name != INSTANCES_FILE:
                skipped.append(candidate)
    return JobFiles(list(jobs), skipped)


def write_schema(path: Path) -> bool:
    """Write the job schema to `path`; False when it held the same already (left untouched)."""
    if same_bytes(schema_path(), path):
        return False
    with atomic_path(path) as tmp:
        shutil.copyfile(schema_path(), tmp)
    return True


def repository_root(folder: Path) -> Path:
    """The nearest folder from `folder` up that keeps a schema copy or is a git repository's
    root; `folder` itself when there is none."""
    for candidate in (folder, *folder.parents):
        if (candidate / SCHEMA_IN_REPO).is_file() or (candidate / ".git").exists():
            return candidate
    return folder


def schema_home(job: Path) -> tuple[str, Path]:
    """Where the repository of the job at `job` keeps the schema (`schemas/job.schema.json` at
    its root), and the reference a modeline in that job gives it: relative, so that it works in
    every clone (a path into the writer's own installation works on the writer's machine only)."""
    folder = job.resolve().parent
    schema = repository_root(folder) / SCHEMA_IN_REPO
    return Path(os.path.relpath(schema, folder)).as_posix(), schema

"""Where each side of a compare finds its analysis: a copy or analyze job's output, or a folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scanjobs.errors import JobError
from scanjobs.jobfile import load_job
from scanjobs.jobfile.model import AnalyzeJob, CopyJob

__all__ = ["Side", "resolve_side", "JOB_SUFFIXES"]

JOB_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class Side:
    """One side of a compare: its role, what the job names, and the analysis CSV found there."""

    role: str  # "baseline" or "candidate"
    given: Path
    analysis: Path

    def describe(self) -> str:
        return str(self.given) if self.analysis.parent == self.given else f"{self.given} ({self.analysis})"


def resolve_side(role: str, given: Path) -> Side:
    """The analysis of `given`: a job file's output, or a folder itself; JobError (exit 2) when
    there is none yet, naming where it was looked for."""
    # here, not at the top: the report package loads pandas, which only a compare run needs
    from scanjobs.report import ReportPaths

    where = f"compare.{role}"
    if given.is_dir():
        folder = given
    elif given.suffix in JOB_SUFFIXES and given.is_file():
        try:
            job = load_job(given)
        except JobError as exc:
            raise JobError(f"{where}: {given.name} cannot be loaded: {exc.message}") from None
        if not isinstance(job, (CopyJob, AnalyzeJob)):
            raise JobError(f"{where}: {given} is a {job.mode} job; a copy or analyze job writes an analysis")
        if isinstance(job, CopyJob) and not job.analysis.enabled:
            raise JobError(f"{where}: {given} turns its analysis off (analysis.enabled: false)")
        folder = job.output
    elif not given.exists():
        raise JobError(f"{where}: {given} does not exist")
    else:
        raise JobError(f"{where}: {given} is neither a job file ({', '.join(JOB_SUFFIXES)}) nor a folder")
    analysis = ReportPaths.in_folder(folder).analysis_csv
    if not analysis.is_file():
        raise JobError(
            f"{where}: there is no analysis at {analysis}",
            hint=f"run {given} first" if folder != given else "name a folder an analysis was written into",
        )
    return Side(role, given, analysis)

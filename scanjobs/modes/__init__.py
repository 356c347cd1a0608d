"""The job modes, one package each, and their static registry (the lifecycle looks a job's mode up here)."""

from __future__ import annotations

from scanjobs.jobfile.model import Job
from scanjobs.modes.analyze import AnalyzeMode
from scanjobs.modes.base import Mode
from scanjobs.modes.compare import CompareMode
from scanjobs.modes.copy import CopyMode
from scanjobs.modes.download import DownloadMode

__all__ = ["MODES", "mode_for"]

MODES: dict[str, Mode] = {
    "copy": CopyMode(),
    "download": DownloadMode(),
    "analyze": AnalyzeMode(),
    "compare": CompareMode(),
}


def mode_for(job: Job) -> Mode:
    return MODES[job.mode]

"""Job files: YAML -> validated, frozen dataclasses (the only place raw dicts live)."""

from scanjobs.jobfile.loader import load_job, load_schema, parse_duration, schema_path
from scanjobs.jobfile.model import AnalyzeJob, BaseJob, CompareJob, CopyJob, DownloadJob, Job

__all__ = [
    "AnalyzeJob",
    "BaseJob",
    "CompareJob",
    "CopyJob",
    "DownloadJob",
    "Job",
    "load_job",
    "load_schema",
    "parse_duration",
    "schema_path",
]

"""What each mode reads from each instance's database, checked before a plan or a run relies on it.

A job's reads are named queries (platform/sql/, their columns in platform/columns.py). Those a
run cannot do without are `required`: a database that lacks any of their tables or columns stops
the run before it does anything, with one message naming them all (exit 5). A feature the run
can do without (upload adoption) has its own queries: without their columns the run says what it
does instead, and goes on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from scanjobs.errors import PlatformError
from scanjobs.events import Events
from scanjobs.jobfile.model import (
    AnalyzeJob,
    CompareJob,
    CopyJob,
    DownloadJob,
    InstanceSpec,
    Job,
    ScanSelection,
)
from scanjobs.platform.columns import Gaps, schema_gaps
from scanjobs.platform.db import PlatformDB

__all__ = ["ADOPTION", "Reads", "ColumnCheck", "job_reads", "check_columns", "require_columns"]

ADOPTION = "upload adoption"

# What a run does instead of an optional feature whose columns are missing.
_WITHOUT = {
    ADOPTION: "an upload that an earlier run sent without recording its answer cannot be looked "
    "for on the target, so it is uploaded again",
}


@dataclass(frozen=True, slots=True)
class Reads:
    """The named queries a job sends to one instance's database: those it needs, and per
    optional feature the ones that feature needs."""

    side: str  # "source" or "target"
    instance: InstanceSpec
    required: frozenset[str]
    optional: Mapping[str, frozenset[str]] = field(default_factory=dict)


def _selection(scans: ScanSelection) -> set[str]:
    # store_scan_dates: why a query selected nothing (each store's scans and their dates)
    return {"scan_ids_query", "store_scan_dates"} if scans.kind == "query" else {"scan_ids_existing"}


# The analysis (analyze jobs; the last step of copy jobs): the ids on each side, the details,
# and on the target how far processing is.
_ANALYSIS_SOURCE = {"scan_ids_existing", "scan_details"}
_ANALYSIS_TARGET = {"scan_ids_existing", "processing_status", "scan_details"}


def job_reads(job: Job) -> tuple[Reads, ...]:
    """Pure: what a run of `job` (and its plan) reads, per instance, source first."""
    if isinstance(job, CompareJob):
        return ()  # it reads the analyses' CSVs, no database
    if isinstance(job, DownloadJob):
        return (Reads("source", job.source, frozenset({*_selection(job.scans), "download_info"})),)
    if isinstance(job, AnalyzeJob):
        return (
            Reads("source", job.source, frozenset(_ANALYSIS_SOURCE)),
            Reads("target", job.target.instance, frozenset(_ANALYSIS_TARGET)),
        )
    assert isinstance(job, CopyJob)
    source = {*_selection(job.scans), "scans_with_files"}
    target = {"store_exists", "scans_using_files"}  # the second: unsettled creates, before a resend
    if job.copy.strategy == "mapped":  # the hints' names on the source, their ids on the target
        source |= {"store_planogram_names", "section_names", "category_names"}
        target |= {"resolve_store_planograms", "resolve_sections", "resolve_categories"}
    if job.analysis.enabled:
        source |= _ANALYSIS_SOURCE
        target |= _ANALYSIS_TARGET
    return (
        Reads("source", job.source, frozenset(source)),
        Reads(
            "target",
            job.target.instance,
            frozenset(target),
            {ADOPTION: frozenset({"clock", "unclaimed_uploads"})},
        ),
    )


@dataclass(frozen=True, slots=True)
class ColumnCheck:
    """What one database lacks of a job's reads: of what the job needs (`missing`), and per
    optional feature it must go without."""

    reads: Reads
    missing: Gaps
    unavailable: dict[str, Gaps]

    def problem(self) -> str:
        """One line naming every missing table and column the job needs ("" when none is)."""
        if not self.missing:
            return ""
        return (
            f"the database of {self.reads.instance.name} ({self.reads.side}) lacks {self.missing.describe()}"
        )

    def available(self, feature: str) -> bool:
        return feature in self.reads.optional and feature not in self.unavailable

    def notes(self) -> list[str]:
        """A line per feature the run goes without: what is missing, and what it does instead."""
        return [
            f"{feature} is off: the database of {self.reads.instance.name} lacks "
            f"{gaps.describe()}; {_WITHOUT[feature]}"
            for feature, gaps in sorted(self.unavailable.items())
        ]


def check_columns(db: PlatformDB, reads: Reads) -> ColumnCheck:
    """What `db` lacks of `reads` (one query of information_schema; PlatformError if it fails)."""
    missing = schema_gaps(db, set(reads.required).union(*reads.optional.values()))
    unavailable = {feature: missing.of(queries) for feature, queries in reads.optional.items()}
    return ColumnCheck(
        reads,
        missing.of(reads.required),
        {feature: gaps for feature, gaps in unavailable.items() if gaps},
    )


def require_columns(
    databases: Sequence[tuple[PlatformDB, Reads]], mode: str, events: Events
) -> list[ColumnCheck]:
    """The start of a run: check every database it reads, before it sends anything anywhere.

    PlatformError (exit 5) naming every missing table and column the job needs, on all of them
    at once; otherwise a warning per feature the run goes without, and the checks.
    """
    checks = [check_columns(db, reads) for db, reads in databases]
    problems = [check.problem() for check in checks if check.missing]
    if problems:
        raise PlatformError(
            f"this {mode} job reads what the platform lacks: {'; '.join(problems)}",
            hint="checked before anything was sent; docs/platform.md says what each query reads",
        )
    for check in checks:
        for note in check.notes():
            events.emit("warning", message=note)
    return checks

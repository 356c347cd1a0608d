"""Analysis reports: scan details and commented comparison, as CSV and Excel files."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from scanjobs.cells import csv_cell
from scanjobs.fsutil import atomic_open
from scanjobs.report.excel import comment_counts, write_excel
from scanjobs.report.rules import (
    ANALYSIS_COLUMNS,
    Comment,
    build_analysis,
    comment_for,
    integral_as_int,
)

__all__ = [
    "ANALYSIS_COLUMNS",
    "Comment",
    "ReportPaths",
    "build_analysis",
    "comment_for",
    "summary_counts",
    "write_csv",
    "write_excel",
    "write_json",
    "write_reports",
]


@dataclass(frozen=True, slots=True)
class ReportPaths:
    """Where `write_reports` put each file."""

    source_details: Path
    target_details: Path
    analysis_csv: Path
    analysis_xlsx: Path
    job_json: Path | None = None  # the job's metadata (`write_reports(..., metadata=)`)

    @classmethod
    def in_folder(cls, output_dir: Path) -> ReportPaths:
        """The files of the analysis written into `output_dir` (a job's output)."""
        return cls(
            source_details=output_dir / "source_scandetails.csv",
            target_details=output_dir / "target_scandetails.csv",
            analysis_csv=output_dir / "analysis_with_comments.csv",
            analysis_xlsx=output_dir / "analysis_with_comments.xlsx",
        )


def summary_counts(analysis: pd.DataFrame) -> dict[str, int]:
    """Comment text -> number of analysis rows, every comment listed (zero included)."""
    return comment_counts(analysis)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` atomically: no index, NULL as an empty cell (never 0), text cells that a
    spreadsheet would run as formulas quoted (`cells.py`); numeric columns are left as they are.

    Lines end in CRLF (RFC 4180, like csv.writer's CSVs): with LF, pandas leaves a lone CR in a
    name unquoted, and every reader splits that row in two."""
    safe = frame.copy(deep=False)  # the columns that change are replaced, the rest shared
    for col in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[col].dtype):
            values = safe[col]
            made_safe = _csv_safe(values)
            if made_safe is not values:
                safe[col] = made_safe
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        safe.to_csv(fh, index=False, na_rep="", lineterminator="\r\n")


def _csv_safe(values: pd.Series) -> pd.Series:
    """`csv_cell` of each value, decided once per distinct value (names repeat on thousands of
    rows, and few or none need a change): a 100k-scan report has millions of cells."""
    try:
        distinct = pd.unique(values.dropna())
    except TypeError:  # an unhashable value (a list, say): one at a time
        return values.map(csv_cell, na_action="ignore")
    changed = {v: safe for v in distinct if (safe := csv_cell(v)) is not v}
    if not changed:
        return values
    hit = values.isin(list(changed))
    return values.where(~hit, values.map(changed))


_ID_COLUMNS = (
    "scan_id",
    "report_id",
    "realogram_id",
    "store_planogram_id",
    "planogram_id",
    "section_id",
    "ok",
    "wandering",
    "oos",
    "hole",
)


def _tidy_ids(details: pd.DataFrame) -> pd.DataFrame:
    """Integral id/count columns as nullable ints: a NULL must not turn `123` into `123.0`."""
    out = details.copy(deep=False)  # the columns that change are replaced, the rest shared
    for col in _ID_COLUMNS:
        if col in out.columns:
            out[col] = integral_as_int(out[col])
    return out


def write_reports(
    output_dir: Path,
    source_details: pd.DataFrame,
    target_details: pd.DataFrame,
    analysis: pd.DataFrame,
    metadata: Mapping[str, object] | None = None,
) -> ReportPaths:
    """Write the four report files into `output_dir` and return their paths; with `metadata`
    (the job and run that wrote them), also its sheet "Job" in the workbook and the sidecar
    `analysis_job.json`."""
    paths = ReportPaths(
        source_details=output_dir / "source_scandetails.csv",
        target_details=output_dir / "target_scandetails.csv",
        analysis_csv=output_dir / "analysis_with_comments.csv",
        analysis_xlsx=output_dir / "analysis_with_comments.xlsx",
        job_json=None if metadata is None else output_dir / "analysis_job.json",
    )
    write_csv(_tidy_ids(source_details), paths.source_details)
    write_csv(_tidy_ids(target_details), paths.target_details)
    write_csv(analysis, paths.analysis_csv)
    write_excel(analysis, paths.analysis_xlsx, metadata)
    if paths.job_json is not None:
        write_json(metadata or {}, paths.job_json)
    return paths


def write_json(document: Mapping[str, object], path: Path) -> None:
    """Write `document` as indented UTF-8 JSON, atomically."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")

"""Analysis reports: scan details and commented comparison, as CSV and Excel files."""

from __future__ import annotations

import pandas as pd

from scanjobs.report.csvfile import write_csv
from scanjobs.report.excel import comment_counts, write_excel
from scanjobs.report.rules import (
    ANALYSIS_COLUMNS,
    Comment,
    build_analysis,
    comment_for,
)
from scanjobs.report.writer import AnalysisWriter, ReportPaths, write_json, write_reports

__all__ = [
    "ANALYSIS_COLUMNS",
    "AnalysisWriter",
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


def summary_counts(analysis: pd.DataFrame) -> dict[str, int]:
    """Comment text -> number of analysis rows, every comment listed (zero included)."""
    return comment_counts(analysis)

"""Scan-level figures of an analysis: how many scans (not rows) got each comment (pure pandas).

An analysis has one row per compared report, so a scan with three sections has three rows: 12
scans can give 17 rows. A *scan* here is a source scan id (`source_scan_id`). Two views:

- **per comment** (`comment_figures`): a scan counts once for each comment it has on any of its
  rows, so a scan with one "No Issues" row and one "Wrong POG Name Mapping" row counts in both,
  and the percentages of scans add up to 100 % or more;
- **worst comment per scan** (`worst_comments`): each scan counts once, under the worst comment
  among its rows (`WORST_FIRST`), so the percentages add up to 100 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from scanjobs.report.rules import Comment

__all__ = [
    "SCAN_COLUMN",
    "WORST_FIRST",
    "CommentFigure",
    "comment_figures",
    "scan_count",
    "scans_per_value",
    "worst_comments",
]

SCAN_COLUMN = "source_scan_id"
# Worst first: a mapping error, then a row that could not be compared (something is missing, so
# the scan is not known to be right), then a difference in the target's favour, then no issue.
WORST_FIRST: tuple[Comment, ...] = (
    Comment.WRONG_POG,
    Comment.DIFFERENT_SECTION,
    Comment.TARGET_ADDITIONAL,
    Comment.SOURCE_NOT_FOUND,
    Comment.NOT_COPIED,
    Comment.TARGET_NOT_FOUND,
    Comment.TARGET_ERROR,
    Comment.TARGET_INTERRUPTED,
    Comment.TARGET_NOT_PROCESSED,
    Comment.NO_TARGET_REPORT,
    Comment.NO_SOURCE_REPORT,
    Comment.NO_REPORTS,
    Comment.HIGHER_POG,
    Comment.NO_ISSUES,
)


@dataclass(frozen=True, slots=True)
class CommentFigure:
    """One comment's figures: analysis rows, scans with it, and those scans' share of all scans
    (0.0 to 100.0; 0.0 when the analysis has no scans)."""

    comment: Comment
    rows: int
    scans: int
    pct_of_scans: float


def scan_count(analysis: pd.DataFrame) -> int:
    """How many scans the analysis covers (distinct source scan ids)."""
    return int(analysis[SCAN_COLUMN].nunique(dropna=True))


def scans_per_value(frame: pd.DataFrame, column: str) -> tuple[dict[str, int], int]:
    """(value of `column` -> how many scans have a row with it, how many scans there are): a
    scan counts once per value however many of its rows have it."""
    scans = frame[[SCAN_COLUMN, column]].drop_duplicates()
    counts = scans[column].astype(object).value_counts()
    return {str(k): int(v) for k, v in counts.items()}, scan_count(frame)


def _figure(comment: Comment, rows: object, scans: object, total: int) -> CommentFigure:
    n = int(scans)  # type: ignore[call-overload]
    return CommentFigure(comment, int(rows), n, round(100.0 * n / total, 1) if total else 0.0)  # type: ignore[call-overload]


def comment_figures(analysis: pd.DataFrame) -> list[CommentFigure]:
    """Rows and scans per comment, every comment listed (zero included), in `Comment` order; a
    scan counts once per comment it has."""
    scans, total = scans_per_value(analysis, "comment")
    rows = analysis["comment"].value_counts()
    return [_figure(c, rows.get(c.text, 0), scans.get(c.text, 0), total) for c in Comment]


def worst_comments(analysis: pd.DataFrame) -> list[CommentFigure]:
    """Each scan once, under the worst comment of its rows (`WORST_FIRST` order, every comment
    listed); `rows` counts the rows of those scans."""
    total = scan_count(analysis)
    rank = {c.text: i for i, c in enumerate(WORST_FIRST)}
    ranks = analysis["comment"].map(rank)
    worst = ranks.groupby(analysis[SCAN_COLUMN]).transform("min")
    per_scan = pd.DataFrame({"scan": analysis[SCAN_COLUMN], "worst": worst}).dropna()
    scans = per_scan.drop_duplicates("scan")["worst"].value_counts()
    rows = per_scan["worst"].value_counts()
    return [_figure(c, rows.get(i, 0), scans.get(i, 0), total) for i, c in enumerate(WORST_FIRST)]

"""Scan-level figures (issue 15, point 2): scans per comment, not only rows; the worst comment
per scan; the Summary sheet that shows both, and the Job sheet."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
from openpyxl import load_workbook

from scanjobs.report import write_reports
from scanjobs.report.excel import write_excel
from scanjobs.report.figures import WORST_FIRST, comment_figures, scan_count, worst_comments
from scanjobs.report.rules import Comment

NO, WRONG, EXTRA = Comment.NO_ISSUES.text, Comment.WRONG_POG.text, Comment.NO_SOURCE_REPORT.text


def analysis(rows: list[tuple[int, str]]) -> pd.DataFrame:
    """An analysis frame with only what the figures read: the source scan id and the comment."""
    return pd.DataFrame(
        {
            "source_scan_id": pd.array([s for s, _ in rows], dtype="Int64"),
            "target_scan_id": pd.array([s + 100 for s, _ in rows], dtype="Int64"),
            "target_planogram_name": ["P"] * len(rows),
            "comment": [c for _, c in rows],
        }
    )


# 4 scans, 7 rows: scan 1 has three sections (two fine, one wrong), scan 2 two fine ones, scan 3
# one wrong, scan 4 a fine one and one the target added.
ROWS = [(1, NO), (1, NO), (1, WRONG), (2, NO), (2, NO), (3, WRONG), (4, NO), (4, EXTRA)]


def by_text(figures: list) -> dict[str, tuple[int, int, float]]:
    return {f.comment.text: (f.rows, f.scans, f.pct_of_scans) for f in figures if f.rows or f.scans}


def test_a_scan_counts_once_per_comment_it_has() -> None:
    frame = analysis(ROWS)
    assert scan_count(frame) == 4
    figures = comment_figures(frame)
    assert [f.comment for f in figures] == list(Comment)  # every comment, zero included
    assert by_text(figures) == {NO: (5, 3, 75.0), WRONG: (2, 2, 50.0), EXTRA: (1, 1, 25.0)}
    assert sum(f.rows for f in figures) == len(frame)


def test_the_worst_comment_counts_each_scan_once() -> None:
    frame = analysis(ROWS)
    worst = worst_comments(frame)
    assert [f.comment for f in worst] == list(WORST_FIRST)
    assert by_text(worst) == {WRONG: (4, 2, 50.0), EXTRA: (2, 1, 25.0), NO: (2, 1, 25.0)}
    assert sum(f.scans for f in worst) == scan_count(frame)
    assert sum(f.rows for f in worst) == len(frame)


def test_worst_first_lists_every_comment_once_errors_first_no_issues_last() -> None:
    assert sorted(c.name for c in WORST_FIRST) == sorted(c.name for c in Comment)
    assert WORST_FIRST[0] is Comment.WRONG_POG and WORST_FIRST[-1] is Comment.NO_ISSUES


def test_an_empty_analysis_has_no_scans_and_no_division_by_zero() -> None:
    frame = analysis([])
    assert scan_count(frame) == 0
    assert all(f.scans == 0 and f.pct_of_scans == 0.0 for f in comment_figures(frame) + worst_comments(frame))


def test_the_figures_agree_with_an_independent_count() -> None:
    frame = analysis(ROWS)
    per_scan: dict[int, set[str]] = {}
    for scan, comment in ROWS:
        per_scan.setdefault(scan, set()).add(comment)
    expected = Counter(c for comments in per_scan.values() for c in comments)
    assert {f.comment.text: f.scans for f in comment_figures(frame) if f.scans} == dict(expected)


def test_summary_sheet_has_rows_scans_and_percent_of_scans(tmp_path: Path) -> None:
    frame = analysis(ROWS)
    path = tmp_path / "a.xlsx"
    write_excel(frame, path)
    ws = load_workbook(path)["Summary"]
    assert [c.value for c in ws[1]][:4] == ["Comment", "Rows", "Scans", "% of scans"]
    assert ws.freeze_panes == "B2"
    table = {r[0]: r[1:4] for r in ws.iter_rows(min_row=2, max_row=len(Comment) + 1, values_only=True)}
    assert table[NO] == (5, 3, 75.0) and table[WRONG] == (2, 2, 50.0)
    assert ws.cell(len(Comment) + 2, 1).value == "Total"
    assert (ws.cell(len(Comment) + 2, 2).value, ws.cell(len(Comment) + 2, 3).value) == (8, 4)
    start = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == "Worst comment per scan")
    worst = {ws.cell(r, 1).value: ws.cell(r, 3).value for r in range(start + 1, start + 1 + len(Comment))}
    assert worst[WRONG] == 2 and worst[NO] == 1 and sum(worst.values()) == 4


def test_job_sheet_and_sidecar_carry_the_metadata(tmp_path: Path) -> None:
    frame = analysis(ROWS)
    metadata = {
        "job": {"name": "nightly", "fingerprint": "abc"},
        "scans": {"kind": "ids", "ids": [1, 2]},
        "strategy": None,
        "scanjobs_version": "9.9",
    }
    details = pd.DataFrame({"scan_id": [1]})
    paths = write_reports(tmp_path, details, details, frame, metadata)
    assert paths.job_json == tmp_path / "analysis_job.json"
    assert json.loads(paths.job_json.read_text(encoding="utf-8")) == metadata
    wb = load_workbook(paths.analysis_xlsx)
    assert wb.sheetnames == ["Analysis", "Summary", "Job"]
    ws = wb["Job"]
    assert ws.freeze_panes == "B2"
    assert [tuple(r) for r in ws.iter_rows(values_only=True)] == [
        ("Field", "Value"),
        ("job.name", "nightly"),
        ("job.fingerprint", "abc"),
        ("scans.kind", "ids"),
        ("scans.ids", "1, 2"),
        ("strategy", None),
        ("scanjobs_version", "9.9"),
    ]


def test_without_metadata_there_is_no_job_sheet_nor_sidecar(tmp_path: Path) -> None:
    details = pd.DataFrame({"scan_id": [1]})
    paths = write_reports(tmp_path, details, details, analysis(ROWS))
    assert paths.job_json is None and not (tmp_path / "analysis_job.json").exists()
    assert load_workbook(paths.analysis_xlsx).sheetnames == ["Analysis", "Summary"]

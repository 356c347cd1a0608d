"""Report writers: the xlsx (fills, header, filter, summary, chart) and the CSVs."""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from openpyxl import load_workbook

from scanjobs.report import summary_counts, write_reports
from scanjobs.report.excel import PERCENT_FORMAT, write_excel
from scanjobs.report.rules import DETAIL_COLUMNS, Comment, build_analysis


def rep(scan: int, report: int, pog: str = "P", section: str = "S", **kw: Any) -> dict:
    row: dict[str, Any] = dict.fromkeys(DETAIL_COLUMNS)
    row.update(
        scan_id=scan,
        report_id=report,
        planogram_name=pog,
        section_name=section,
        is_additional_section=False,
        pre_pog_pct=50.0,
        store_planogram_id=7,
        ok=3,
    )
    row.update(kw)
    return row


@pytest.fixture()
def details() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    source = pd.DataFrame(
        [rep(1, 1), rep(2, 2), rep(3, 3), rep(4, 4), rep(5, 5), rep(6, 6), rep(7, 7)],
        columns=list(DETAIL_COLUMNS),
    )
    target = pd.DataFrame(
        [
            rep(11, 1, pog="Q"),
            rep(12, 2, section="T"),
            rep(13, 3, is_additional_section=True),
            rep(14, 4, pre_pog_pct=83.5),
            rep(15, 5),
            rep(15, 9, section="Extra"),
        ],
        columns=list(DETAIL_COLUMNS),
    )
    pairs = [(1, 11), (2, 12), (3, 13), (4, 14), (5, 15), (6, None), (7, 17)]
    analysis = build_analysis(source, target, pairs, {11, 12, 13, 14, 15})
    return source, target, analysis


def test_rows_filled_with_their_comment_colour(tmp_path: Path, details: Any) -> None:
    _, _, analysis = details
    path = tmp_path / "a.xlsx"
    write_excel(analysis, path)
    ws = load_workbook(path)["Analysis"]
    comment_col = list(analysis.columns).index("comment") + 1
    rows = list(ws.iter_rows(min_row=2))
    assert len(rows) == len(analysis)
    for row, text in zip(rows, analysis["comment"], strict=True):
        assert row[comment_col - 1].value == text
        colour = Comment.from_text(text).fill
        assert {cell.fill.fgColor.rgb[-6:] for cell in row} == {colour}
        assert {cell.fill.fill_type for cell in row} == {"solid"}


def test_header_bold_frozen_and_filtered(tmp_path: Path, details: Any) -> None:
    _, _, analysis = details
    path = tmp_path / "a.xlsx"
    write_excel(analysis, path)
    ws = load_workbook(path)["Analysis"]
    header = next(ws.iter_rows(max_row=1))
    assert [c.value for c in header] == list(analysis.columns)
    assert all(c.font.bold for c in header)
    assert ws.freeze_panes == "C2"  # the header row and both scan id columns
    assert ws.auto_filter.ref == f"A1:{header[-1].column_letter}{len(analysis) + 1}"
    assert all(8 <= ws.column_dimensions[c.column_letter].width <= 52 for c in header)


def test_nulls_are_empty_and_percent_formatted(tmp_path: Path, details: Any) -> None:
    _, _, analysis = details
    path = tmp_path / "a.xlsx"
    write_excel(analysis, path)
    ws = load_workbook(path)["Analysis"]
    columns = list(analysis.columns)
    last = len(analysis) + 1  # pair 7: target not processed, so its target side is empty
    assert ws.cell(last, columns.index("target_pre_pog_pct") + 1).value is None
    assert ws.cell(last, columns.index("source_post_osa_pct") + 1).value is None
    higher = ws.cell(5, columns.index("target_pre_pog_pct") + 1)
    assert higher.value == 83.5 and higher.number_format == PERCENT_FORMAT


def test_summary_counts_match_csv_and_chart(tmp_path: Path, details: Any) -> None:
    source, target, analysis = details
    paths = write_reports(tmp_path / "out", source, target, analysis)
    csv_counts = pd.read_csv(paths.analysis_csv)["comment"].value_counts().to_dict()

    wb = load_workbook(paths.analysis_xlsx)
    ws = wb["Summary"]
    listed = {ws.cell(r, 1).value: ws.cell(r, 2).value for r in range(2, len(Comment) + 2)}
    assert list(listed) == [c.text for c in Comment]  # every comment, zero included
    assert {k: v for k, v in listed.items() if v} == csv_counts
    assert listed == summary_counts(analysis)
    assert ws.cell(len(Comment) + 2, 2).value == len(analysis)
    assert len(ws._charts) == 1

    # Per target POG x comment: the rows add up to the same counts.
    header_row = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == "Target planogram name")
    names = [ws.cell(r, 1).value for r in range(header_row + 1, ws.max_row + 1)]
    assert "Q" in names and "(no target POG)" in names
    totals = [ws.cell(r, len(Comment) + 2).value for r in range(header_row + 1, ws.max_row + 1)]
    assert sum(totals) == len(analysis)


def test_csvs_keep_nulls_empty(tmp_path: Path, details: Any) -> None:
    source, target, analysis = details
    paths = write_reports(tmp_path, source, target, analysis)
    assert {p.name for p in tmp_path.iterdir()} == {
        "source_scandetails.csv",
        "target_scandetails.csv",
        "analysis_with_comments.csv",
        "analysis_with_comments.xlsx",
    }
    text = paths.analysis_csv.read_text(encoding="utf-8")
    header, *lines = text.splitlines()
    assert header.split(",")[:2] == ["source_scan_id", "target_scan_id"]
    assert len(lines) == len(analysis)
    not_copied = next(line for line in lines if "Not Copied" in line)
    assert not_copied.startswith("6,,7,,")  # no target id, ids printed as integers
    source_back = pd.read_csv(paths.source_details)
    assert len(source_back) == len(source) and source_back["post_osa_pct"].isna().all()
    back = pd.read_csv(paths.analysis_csv)
    assert back["target_pre_pog_pct"].isna().sum() == analysis["target_pre_pog_pct"].isna().sum()


def saved_in_2001(path: Path) -> None:
    """The same workbook as if openpyxl had saved it in 2001 (its core properties and zip
    entries carry the time of the save)."""
    with zipfile.ZipFile(path) as zf:
        members = [(info, zf.read(info)) for info in zf.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2001-01-01T00:00:00Z", data)
                assert b"2001-01-01" in data
            info.date_time = (2001, 1, 1, 0, 0, 0)
            zf.writestr(info, data)


def test_same_analysis_leaves_the_workbook_alone(tmp_path: Path, details: Any) -> None:
    """issue 12, point 21: writing the same analysis again changes nothing on disk (openpyxl
    stamps each save with its time, which is no change of the report); other rows do."""
    _, _, analysis = details
    path = tmp_path / "a.xlsx"
    write_excel(analysis, path)
    saved_in_2001(path)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    before = path.stat()
    write_excel(analysis, path)
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [p.name for p in tmp_path.iterdir()] == ["a.xlsx"]
    write_excel(analysis.iloc[:-1], path)
    assert path.stat().st_mtime_ns != before.st_mtime_ns
    assert load_workbook(path)["Analysis"].max_row == len(analysis)

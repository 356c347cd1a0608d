"""Rows written straight into a sheet's XML read back as XlsxWriter would have written them."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xlsxwriter
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook

from scanjobs.report.excel import _text_cell
from scanjobs.report.sheetrows import add_rows, sheet_part


def workbook(path: Path, rows: list[list[object]], columns: int) -> None:
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    ws = wb.add_worksheet("Data")
    ws.write_row(0, 0, [f"c{i}" for i in range(columns)])
    style = wb.add_format({"bold": True})._get_xf_index()
    wb.close()
    add_rows(
        path,
        sheet_part(1),
        rows,
        lambda values: [style] * len(values),
        first_row=2,
        count=len(rows),
        columns=columns,
        text_of=_text_cell,
    )


def test_values_of_every_kind_read_back(tmp_path: Path) -> None:
    path = tmp_path / "a.xlsx"
    rows: list[list[object]] = [
        [1, 2.5, "text", True, None],
        [np.int64(7), np.float64(-3.5), "<a & b>", np.bool_(False), pd.NA],
        [10**15, float("nan"), "=1+1", False, float("inf")],
    ]
    workbook(path, rows, 5)
    ws = load_workbook(path)["Data"]
    assert ws.dimensions == "A1:E4"
    got = [[c.value for c in row] for row in ws.iter_rows(min_row=2)]
    assert got == [
        [1, 2.5, "text", True, None],
        [7, -3.5, "<a & b>", False, None],
        [10**15, None, "=1+1", False, "inf"],
    ]
    assert ws.cell(4, 3).data_type == "s"  # a formula-like text stays text
    assert all(c.font.bold for row in ws.iter_rows(min_row=2) for c in row)  # the style named


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_any_text_is_well_formed_xml(text: str) -> None:
    """Whatever a platform's name holds, the sheet stays readable (XML escaped, controls
    replaced); escaped-looking sequences such as _x0041_ are escaped in turn."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.xlsx"
        workbook(path, [[text]], 1)
        value = load_workbook(path)["Data"].cell(2, 1).value
    expected = _text_cell(text)
    if "_x" in expected:  # openpyxl does not unescape inline text: Excel does
        return
    assert (value or "") == expected


def test_a_row_count_other_than_announced_is_refused(tmp_path: Path) -> None:
    path = _empty(tmp_path / "b.xlsx")
    with pytest.raises(ValueError, match="announced"):
        add_rows(
            path, sheet_part(1), [[1]], lambda v: [0], first_row=2, count=2, columns=1, text_of=_text_cell
        )
    assert not (tmp_path / "b.xlsx.rows").exists()
    assert zipfile.is_zipfile(tmp_path / "b.xlsx")  # the workbook as it was


def _empty(path: Path) -> Path:
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    wb.add_worksheet("Data").write(0, 0, "h")
    wb.close()
    return path

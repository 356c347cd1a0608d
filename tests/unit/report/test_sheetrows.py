"""Rows written straight into a sheet's XML read back as XlsxWriter would have written them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xlsxwriter
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook

from scanjobs.report.excel import text_cell
from scanjobs.report.sheetrows import add_rows, sheet_part


def workbook(path: Path, frame: pd.DataFrame) -> None:
    """A workbook whose sheet XlsxWriter wrote with a header, and `frame`'s rows added, every cell
    in one bold style (a style of the workbook, by its XF index)."""
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    ws = wb.add_worksheet("Data")
    ws.write_row(0, 0, list(frame.columns))
    style = wb.add_format({"bold": True})._get_xf_index()
    wb.close()
    frame = frame.assign(key="k")
    add_rows(
        path,
        sheet_part(1),
        frame,
        {"k": [style] * len(frame.columns)},
        "key",
        first_row=2,
        text_of=text_cell,
    )


def test_values_of_every_kind_read_back(tmp_path: Path) -> None:
    path = tmp_path / "a.xlsx"
    frame = pd.DataFrame(
        {
            "int": pd.array([1, 7, 10**15], dtype="Int64"),
            "nullable": pd.array([None, 3, 4], dtype="Int64"),
            "float": [2.5, -3.5, float("nan")],
            "infinite": [1.0, float("inf"), float("-inf")],
            "text": ["text", "<a & b>", "=1+1"],
            "bool": pd.array([True, False, None], dtype="boolean"),
            "object": ["x", None, np.int64(7)],
            "numpy bool": [np.bool_(True), np.bool_(False), True],
        }
    )
    workbook(path, frame)
    ws = load_workbook(path)["Data"]
    assert ws.dimensions == "A1:I4"
    got = [[c.value for c in row] for row in ws.iter_rows(min_row=2, max_col=8)]
    assert got == [
        [1, None, 2.5, 1, "text", True, "x", True],
        [7, 3, -3.5, "inf", "<a & b>", False, None, False],
        [10**15, 4, None, "-inf", "=1+1", None, 7, True],
    ]
    assert ws.cell(4, 5).data_type == "s"  # a formula-like text stays text
    assert all(c.font.bold for row in ws.iter_rows(min_row=2) for c in row)  # the style named


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_any_text_is_well_formed_xml(text: str) -> None:
    """Whatever a platform's name holds, the sheet stays readable (XML escaped, controls
    replaced); escaped-looking sequences such as _x0041_ are escaped in turn."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.xlsx"
        workbook(path, pd.DataFrame({"text": [text]}))
        value = load_workbook(path)["Data"].cell(2, 1).value
    expected = text_cell(text)
    if "_x" in expected:  # openpyxl does not unescape inline text: Excel does
        return
    assert (value or "") == expected


def test_a_sheet_without_its_data_part_is_refused_and_the_file_kept(tmp_path: Path) -> None:
    path = tmp_path / "b.xlsx"
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    wb.add_worksheet("Data").write(0, 0, "h")
    wb.close()
    before = path.read_bytes()
    with pytest.raises(ValueError, match="no xl/worksheets/sheet2.xml"):
        add_rows(path, sheet_part(2), pd.DataFrame({"k": ["k"]}), {"k": [0]}, "k", first_row=2, text_of=str)
    assert path.read_bytes() == before
    assert not (tmp_path / "b.xlsx.rows").exists()

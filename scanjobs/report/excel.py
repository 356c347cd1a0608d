"""Excel writer for the analysis: coloured rows by comment, a summary sheet and a chart."""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterator, Sequence
from copy import copy
from pathlib import Path
from typing import Any

import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font, PatternFill
from openpyxl.styles.cell_style import StyleArray
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from scanjobs.fsutil import atomic_path
from scanjobs.report.rules import Comment

__all__ = ["PERCENT_FORMAT", "write_excel", "comment_counts", "planogram_comment_counts"]

# The *_pct values are already percentages (83.5 means 83.5 %), so the format appends a
# literal "%" instead of Excel's `0.0%`, which would multiply by 100.
PERCENT_FORMAT = '0.0"%"'
NO_TARGET_POG = "(no target POG)"
REPLACEMENT = "\ufffd"  # stands in for a character an Excel cell cannot hold
_SAVE_TIME_PART = "docProps/core.xml"  # created/modified: all we set in it is the time of the save
_MIN_WIDTH, _MAX_WIDTH = 8, 50
_BOLD = Font(bold=True)
_FILLS = {c.text: PatternFill(fill_type="solid", start_color=c.fill, end_color=c.fill) for c in Comment}


def comment_counts(analysis: pd.DataFrame) -> dict[str, int]:
    """Rows per comment text, every comment listed (zero included), in `Comment` order."""
    counts = analysis["comment"].value_counts()
    return {c.text: int(counts.get(c.text, 0)) for c in Comment}


def planogram_comment_counts(analysis: pd.DataFrame) -> pd.DataFrame:
    """Rows per target planogram name (index) and comment text (columns, all comments)."""
    names = analysis["target_planogram_name"].astype(object)
    names = names.where(names.notna(), NO_TARGET_POG)
    table = pd.crosstab(names, analysis["comment"].astype(object))
    table = table.reindex(columns=[c.text for c in Comment], fill_value=0).sort_index()
    table.index.name = "target_planogram_name"
    return table


def _cell_value(value: object) -> object:
    """NULL (None, NA, NaN) becomes an empty cell, never 0; text loses what Excel cannot hold."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str):
        # control characters would make openpyxl refuse the whole report
        return ILLEGAL_CHARACTERS_RE.sub(REPLACEMENT, value)
    return value


def _put(ws: Worksheet, value: object) -> Cell:
    """A cell of one value; text is stored as text. Platform text is data: openpyxl would make
    `=HYPERLINK(...)` a live formula and `#N/A` an error cell."""
    cell = WriteOnlyCell(ws, _cell_value(value))
    if isinstance(cell.value, str):
        cell.data_type = "s"
    return cell


def _widths(analysis: pd.DataFrame) -> list[int]:
    widths = []
    for col in analysis.columns:
        values = analysis[col].dropna().astype(str)
        longest = int(values.str.len().max()) if len(values) else 0
        widths.append(min(_MAX_WIDTH, max(_MIN_WIDTH, len(str(col)), longest) + 2))
    return widths


def _header(ws: Worksheet, names: Sequence[object]) -> list[Cell]:
    cells = [_put(ws, name) for name in names]
    for cell in cells:
        cell.font = _BOLD
    return cells


def _object_rows(frame: pd.DataFrame, chunk: int = 10_000) -> Iterator[tuple[Any, ...]]:
    """The rows as tuples of Python objects (NA as pd.NA), converted a chunk at a time: the whole
    frame as objects at once doubled the peak memory of a 100k-scan report."""
    for start in range(0, len(frame), chunk):
        yield from frame.iloc[start : start + chunk].astype(object).itertuples(index=False, name=None)


def _write_analysis(ws: Worksheet, analysis: pd.DataFrame) -> None:
    """Rows streamed to the file (a write-only sheet): a workbook of 100k scans holds millions
    of cells, which a normal sheet keeps in memory (2.5 GB) until it is saved."""
    ws.freeze_panes = "A2"
    last_column = get_column_letter(max(1, len(analysis.columns)))
    ws.auto_filter.ref = f"A1:{last_column}{len(analysis) + 1}"
    for index, width in enumerate(_widths(analysis), start=1):
        ws.column_dimensions[get_column_letter(index)].width = width
    ws.append(_header(ws, list(analysis.columns)))

    # Styling through the public setters hashes a Fill object for every cell (about 40 % of
    # the time for 15k rows); each cell instead copies the style ids of a prototype styled
    # once per (comment, percent or not), openpyxl's usual idiom for copying a style.
    prototypes: dict[tuple[str, bool], StyleArray] = {}
    for text, fill in _FILLS.items():
        for is_pct in (False, True):
            proto = Cell(ws)
            proto.fill = fill
            if is_pct:
                proto.number_format = PERCENT_FORMAT
            prototypes[text, is_pct] = proto._style
    pct = [str(col).endswith("_pct") for col in analysis.columns]
    comment_at = list(analysis.columns).index("comment")
    for values in _object_rows(analysis):
        comment = values[comment_at]
        cells = []
        for value, is_pct in zip(values, pct, strict=True):
            # Empty cells get the fill too, so every row is coloured across its width.
            cell = _put(ws, value)
            cell._style = copy(prototypes[comment, is_pct])
            cells.append(cell)
        ws.append(cells)


def _write_summary(ws: Worksheet, analysis: pd.DataFrame) -> None:
    counts = comment_counts(analysis)
    table = planogram_comment_counts(analysis)
    ws.column_dimensions["A"].width = max(len(c.text) for c in Comment) + 2
    ws.column_dimensions["B"].width = 10
    ws.append(_header(ws, ["Comment", "Count"]))
    for text, count in counts.items():
        label = WriteOnlyCell(ws, text)
        label.fill = _FILLS[text]
        ws.append([label, count])
    total_row = len(counts) + 2
    ws.append(_header(ws, ["Total", sum(counts.values())]))

    chart = BarChart()
    chart.type = "bar"
    chart.title = "Rows per comment"
    chart.legend = None
    chart.height, chart.width = 9, 18
    data = Reference(ws, min_col=2, min_row=1, max_row=len(counts) + 1)
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=len(counts) + 1))
    ws.add_chart(chart, "D2")

    # The per-planogram table starts below the chart (about 18 rows high): no overlap.
    top = max(total_row + 3, 22)
    for _ in range(top - total_row - 1):
        ws.append([])
    ws.append(_header(ws, ["Target planogram name", *table.columns, "Total"]))
    for name, values in table.iterrows():
        # a target POG name from the platform
        ws.append([_put(ws, name), *(int(v) for v in values), int(values.sum())])


def _same_workbook(new: Path, old: Path) -> bool:
    """True when `old` is a workbook with the content of `new`: openpyxl stamps every save with
    its time (the core properties and each zip entry's date), which is no change of the report."""
    try:
        with zipfile.ZipFile(new) as a, zipfile.ZipFile(old) as b:
            names = a.namelist()
            return names == b.namelist() and all(
                a.read(name) == b.read(name) for name in names if name != _SAVE_TIME_PART
            )
    except (OSError, zipfile.BadZipFile):  # no old file, or not a workbook: write
        return False


def write_excel(analysis: pd.DataFrame, path: Path) -> None:
    """Write `analysis` to `path` (sheets "Analysis" and "Summary"), atomically; a workbook
    with the same content is left as it is."""
    wb = Workbook(write_only=True)
    _write_analysis(wb.create_sheet("Analysis"), analysis)
    _write_summary(wb.create_sheet("Summary"), analysis)
    with atomic_path(path, suffix=".xlsx", same=_same_workbook) as tmp:
        wb.save(tmp)

"""Excel writer for the analysis: coloured rows by comment, a summary sheet and a chart, the job.

Written with XlsxWriter, row by row to the file (its constant-memory mode): a report of 100k
scans holds millions of cells, which openpyxl took a minute and gigabytes to write (XlsxWriter:
a third of the time, and memory that does not grow with the rows). openpyxl reads them in tests.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from scanjobs.fsutil import atomic_path
from scanjobs.report.figures import SCAN_COLUMN, CommentFigure, comment_figures, scan_count, worst_comments
from scanjobs.report.rules import Comment
from scanjobs.report.sheetrows import add_row_parts, sheet_part

__all__ = [
    "PERCENT_FORMAT",
    "SUMMARY_COLUMNS",
    "ColumnWidths",
    "SheetRows",
    "comment_counts",
    "flatten",
    "planogram_comment_counts",
    "write_analysis_excel",
    "write_excel",
    "write_job_sheet",
]

# The *_pct values are already percentages (83.5 means 83.5 %), so the format appends a
# literal "%" instead of Excel's `0.0%`, which would multiply by 100.
PERCENT_FORMAT = '0.0"%"'
DATE_FORMAT = "yyyy-mm-dd"
NO_TARGET_POG = "(no target POG)"
REPLACEMENT = "\ufffd"  # stands in for a character an Excel cell cannot hold
MAX_TEXT = 32_767  # characters an Excel cell holds
# Characters XML 1.0 (and so an xlsx file) cannot hold: C0 controls other than tab, LF and CR.
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SAVE_TIME_PART = "docProps/core.xml"  # created/modified: all we set in it is the time of the save
_COMPARE_BLOCK = 1 << 20
_MIN_WIDTH, _MAX_WIDTH = 8, 50
# No guessing: a text cell stays text (never a formula, a number or a link), NaN is no error.
WORKBOOK_OPTIONS = {
    "constant_memory": True,
    "strings_to_formulas": False,
    "strings_to_numbers": False,
    "strings_to_urls": False,
    "nan_inf_to_errors": False,
}


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
        # control characters are no XML: the whole report would be unreadable; line ends as
        # XML reads them (a carriage return is a line feed), not escaped as _x000D_
        text = _ILLEGAL.sub(REPLACEMENT, value).replace("\r\n", "\n").replace("\r", "\n")
        return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "\u2026"
    return value


@functools.lru_cache(maxsize=65_536)
def text_cell(value: str) -> str:
    """`_cell_value` of a text, remembered: names repeat on thousands of rows."""
    text = _cell_value(value)
    assert isinstance(text, str)
    return text


class CellWriter:
    """Writes values into a sheet by their type: text always as text (platform text is data:
    `=HYPERLINK(...)` must not become a live formula, `#N/A` an error, `1e5` a number)."""

    def __init__(self, wb: xlsxwriter.Workbook) -> None:
        self.bold = wb.add_format({"bold": True})
        self.date = wb.add_format({"num_format": DATE_FORMAT})
        self.percent = wb.add_format({"num_format": PERCENT_FORMAT})
        self.fills: dict[Comment, Format] = {}

    def put(self, ws: Worksheet, row: int, col: int, value: object, fmt: Format | None = None) -> None:
        value = _cell_value(value)
        if value is None:
            ws.write_blank(row, col, None, fmt)
        elif isinstance(value, str):
            ws.write_string(row, col, value, fmt)
        elif isinstance(value, bool):
            ws.write_boolean(row, col, value, fmt)
        elif isinstance(value, (int, float)):  # numpy's numbers included
            if isinstance(value, float) and math.isinf(value):
                ws.write_string(row, col, str(value), fmt)
            else:
                ws.write_number(row, col, value, fmt)
        elif isinstance(value, (dt.date, dt.datetime)):
            ws.write_datetime(row, col, value, fmt or self.date)
        else:  # anything else as its text
            ws.write_string(row, col, str(value)[:MAX_TEXT], fmt)

    def header(self, ws: Worksheet, row: int, names: Sequence[object]) -> None:
        for col, name in enumerate(names):
            self.put(ws, row, col, name, self.bold)


def column_widths(frame: pd.DataFrame) -> list[int]:
    """Each column's width: its longest value as text, within _MIN_WIDTH and _MAX_WIDTH."""
    widths = ColumnWidths(frame.columns)
    widths.add(frame)
    return widths.widths()


class ColumnWidths:
    """`column_widths` of a frame read in parts (of its dtypes), each part added in turn."""

    def __init__(self, columns: Iterable[object]) -> None:
        self.columns = list(columns)
        self._longest = [0] * len(self.columns)
        # a number column's smallest and largest values: the longest texts of its numbers
        self._low: list[Any] = [None] * len(self.columns)
        self._high: list[Any] = [None] * len(self.columns)

    def add(self, part: pd.DataFrame) -> None:
        for index in range(len(self.columns)):
            values = part.iloc[:, index].dropna()
            if not len(values):
                continue
            if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
                low, high = values.min(), values.max()
                if self._low[index] is None or low < self._low[index]:
                    self._low[index] = low
                if self._high[index] is None or high > self._high[index]:
                    self._high[index] = high
                if not pd.api.types.is_float_dtype(values.dtype):
                    continue
            longest = int(values.astype(str).str.len().max())
            self._longest[index] = max(self._longest[index], longest)

    def widths(self) -> list[int]:
        widths = []
        for name, longest, low, high in zip(self.columns, self._longest, self._low, self._high, strict=True):
            if low is not None:
                longest = max(longest, len(str(low)), len(str(high)))
            widths.append(min(_MAX_WIDTH, max(_MIN_WIDTH, len(str(name)), longest) + 2))
        return widths


@dataclass(frozen=True)
class SheetRows:
    """The rows of a sheet, as one frame or in parts: the columns, how many rows, each column's
    width, and `parts` (called when the sheet is written) the frames whose rows they are, in
    turn, each with these columns."""

    columns: Sequence[object]
    count: int
    widths: Sequence[int]
    parts: Callable[[], Iterable[pd.DataFrame]]

    @classmethod
    def of(cls, frame: pd.DataFrame) -> SheetRows:
        """The rows of `frame`."""
        return cls(list(frame.columns), len(frame), column_widths(frame), lambda: [frame])


def _frozen_columns(columns: Sequence[object]) -> int:
    """How many leading columns are scan ids (`source_scan_id`, `target_scan_id`): kept in view."""
    count = 0
    for name in columns:
        if not str(name).endswith("scan_id"):
            break
        count += 1
    return count


class Coloured(Protocol):
    """What colours a row: an analysis comment or a compare class (its text and fill colour)."""

    @property
    def text(self) -> str: ...
    @property
    def fill(self) -> str: ...


def fill_format(wb: xlsxwriter.Workbook, fill: str, **extra: object) -> Format:
    """A format filling a cell with `fill` (hex RGB, a comment's or a compare class's colour)."""
    return wb.add_format({"pattern": 1, "bg_color": f"#{fill}", **extra})


def coloured_rows(
    wb: xlsxwriter.Workbook,
    w: CellWriter,
    name: str,
    rows: SheetRows,
    *,
    key: str,
    kinds: Iterable[Coloured],
    percent: Sequence[bool],
    frozen_columns: int,
) -> Callable[[Path], None]:
    """A sheet `name` of `rows`, each cell (the empty ones too, so the row is coloured across
    its width) filled with the colour of the row's `key` value (one of `kinds`), the `percent`
    columns in PERCENT_FORMAT; the header and `frozen_columns` columns frozen, and filtered.
    XlsxWriter writes the header; the rows are added to the saved file by the returned function
    (sheetrows.py: XlsxWriter took a minute for a 100k-scan analysis), a part at a time."""
    ws = wb.add_worksheet(name)
    columns = list(rows.columns)
    ws.freeze_panes(1, frozen_columns)
    ws.autofilter(0, 0, rows.count, max(0, len(columns) - 1))
    for index, width in enumerate(rows.widths):
        ws.set_column(index, index, width)
    w.header(ws, 0, columns)
    # Each (kind, percent or not) style, as the XF index the cells name: registered now, so
    # the saved workbook's styles hold them although XlsxWriter writes no cell of them.
    styles = {}
    for kind in kinds:
        plain = fill_format(wb, kind.fill)._get_xf_index()
        pct = fill_format(wb, kind.fill, num_format=PERCENT_FORMAT)._get_xf_index()
        styles[kind.text] = [pct if is_pct else plain for is_pct in percent]
    part = sheet_part(len(wb.worksheets()))

    def add(path: Path) -> None:
        add_row_parts(
            path, part, rows.parts(), len(columns), rows.count, styles, key, first_row=2, text_of=text_cell
        )

    return add


def _write_analysis(wb: xlsxwriter.Workbook, w: CellWriter, rows: SheetRows) -> Callable[[Path], None]:
    """The Analysis sheet, coloured by comment; the header and the scan ids (the first columns)
    stay in view when scrolling."""
    columns = list(rows.columns)
    return coloured_rows(
        wb,
        w,
        "Analysis",
        rows,
        key="comment",
        kinds=Comment,
        percent=[str(col).endswith("_pct") for col in columns],
        frozen_columns=_frozen_columns(columns),
    )


def _figures_table(ws: Worksheet, w: CellWriter, top: int, title: str, figures: list[CommentFigure]) -> int:
    """A Comment | Rows | Scans | % of scans table at row `top`; the row after its total."""
    w.header(ws, top, [title, "Rows", "Scans", "% of scans"])
    for row, figure in enumerate(figures, start=top + 1):
        ws.write_string(row, 0, figure.comment.text, w.fills[figure.comment])
        ws.write_number(row, 1, figure.rows)
        ws.write_number(row, 2, figure.scans)
        ws.write_number(row, 3, figure.pct_of_scans, w.percent)
    return top + len(figures) + 1


def _write_summary(wb: xlsxwriter.Workbook, w: CellWriter, analysis: pd.DataFrame) -> None:
    """Rows and scans per comment (a scan counts once per comment it has), then each scan under
    its worst comment (once), then rows per target POG and comment (figures.py says why both)."""
    ws = wb.add_worksheet("Summary")
    ws.freeze_panes(1, 1)
    w.fills = {c: fill_format(wb, c.fill) for c in Comment}
    figures = comment_figures(analysis)
    table = planogram_comment_counts(analysis)
    ws.set_column(0, 0, max(len(c.text) for c in Comment) + 2)
    ws.set_column(1, 3, 10)
    total_row = _figures_table(ws, w, 0, "Comment", figures)
    w.header(ws, total_row, ["Total", len(analysis), scan_count(analysis)])

    chart = wb.add_chart({"type": "bar"})
    chart.add_series(
        {
            "name": ["Summary", 0, 2],
            "categories": ["Summary", 1, 0, len(figures), 0],
            "values": ["Summary", 1, 2, len(figures), 2],
        }
    )
    chart.set_title({"name": "Scans per comment"})
    chart.set_legend({"none": True})
    chart.set_size({"width": 18 * 37.8, "height": 9 * 37.8})  # 18 x 9 cm, as before
    ws.insert_chart("F2", chart)

    worst_top = total_row + 3
    worst_end = _figures_table(ws, w, worst_top, "Worst comment per scan", worst_comments(analysis))
    w.header(ws, worst_end, ["Total", len(analysis), scan_count(analysis)])

    # The per-planogram table starts below the chart (about 18 rows high): no overlap.
    top = max(worst_end + 3, 21)
    w.header(ws, top, ["Target planogram name", *table.columns, "Total"])
    for row, (name, values) in enumerate(table.iterrows(), start=top + 1):
        w.put(ws, row, 0, name)  # a target POG name from the platform
        for col, value in enumerate(values, start=1):
            ws.write_number(row, col, int(value))
        ws.write_number(row, len(table.columns) + 1, int(values.sum()))


def write_job_sheet(wb: xlsxwriter.Workbook, metadata: Mapping[str, object]) -> None:
    """Sheet "Job": one `field | value` row per item of `metadata`, nested mappings flattened
    to dotted names (`source.api_url`), lists as their items joined by ", ". A reusable writer:
    any report that has a job's metadata (modes/metadata.py) can add it."""
    w = CellWriter(wb)
    ws = wb.add_worksheet("Job")
    ws.freeze_panes(1, 1)
    ws.set_column(0, 0, 28)
    ws.set_column(1, 1, 80)
    w.header(ws, 0, ["Field", "Value"])
    for row, (name, value) in enumerate(flatten(metadata), start=1):
        ws.write_string(row, 0, name)
        w.put(ws, row, 1, value)


def flatten(metadata: Mapping[str, object], prefix: str = "") -> Iterator[tuple[str, object]]:
    """`(dotted name, value)` for each leaf of `metadata`, in its order; a list becomes one text."""
    for key, value in metadata.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten(value, name + ".")
        elif isinstance(value, (list, tuple)):
            yield name, ", ".join(str(v) for v in value)
        else:
            yield name, value


def same_workbook(new: Path, old: Path) -> bool:
    """True when `old` is a workbook with the content of `new`: every save is stamped with its
    time (the core properties), which is no change of the report. Parts are compared a block at
    a time: the sheet of a 100k-scan analysis is 200 MB of XML, and read whole from both files
    it took 600 MB of memory."""
    try:
        with zipfile.ZipFile(new) as a, zipfile.ZipFile(old) as b:
            names = a.namelist()
            return names == b.namelist() and all(
                _same_part(a, b, name) for name in names if name != _SAVE_TIME_PART
            )
    except (OSError, zipfile.BadZipFile):  # no old file, or not a workbook: write
        return False


def _same_part(a: zipfile.ZipFile, b: zipfile.ZipFile, name: str) -> bool:
    left, right = a.getinfo(name), b.getinfo(name)
    if (left.file_size, left.CRC) != (right.file_size, right.CRC):
        return False
    with a.open(left) as x, b.open(right) as y:
        while block := x.read(_COMPARE_BLOCK):
            if block != y.read(len(block)):
                return False
        return not y.read(1)


def write_excel(analysis: pd.DataFrame, path: Path, metadata: Mapping[str, object] | None = None) -> None:
    """Write `analysis` to `path` (sheets "Analysis", "Summary", and "Job" when `metadata` is
    given), atomically; a workbook with the same content is left as it is."""
    write_analysis_excel(path, SheetRows.of(analysis), analysis, metadata)


# The analysis' columns that its summary reads.
SUMMARY_COLUMNS = (SCAN_COLUMN, "comment", "target_planogram_name")


def write_analysis_excel(
    path: Path, rows: SheetRows, summary: pd.DataFrame, metadata: Mapping[str, object] | None = None
) -> None:
    """`write_excel` of the analysis whose rows are `rows` (maybe in parts), and whose
    SUMMARY_COLUMNS are `summary`, every row of them."""
    with atomic_path(path, suffix=".xlsx", same=same_workbook) as tmp:
        wb = xlsxwriter.Workbook(str(tmp), WORKBOOK_OPTIONS)
        w = CellWriter(wb)
        add_analysis_rows = _write_analysis(wb, w, rows)
        _write_summary(wb, w, summary)
        if metadata is not None:
            write_job_sheet(wb, metadata)
        wb.close()
        add_analysis_rows(tmp)

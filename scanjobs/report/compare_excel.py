"""Excel writer for a compare: rows coloured by class, and a summary of classes and transitions.

Written like the analysis workbook, with `excel.py`'s coloured-rows sheet (its rows added as
sheet XML once XlsxWriter has saved the rest) and its cell writer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import xlsxwriter

from scanjobs.fsutil import atomic_path
from scanjobs.report.compare import CLASS_RULE, NONE, CompareClass, class_counts, transition_counts
from scanjobs.report.excel import (
    WORKBOOK_OPTIONS,
    CellWriter,
    SheetRows,
    coloured_rows,
    fill_format,
    same_workbook,
)
from scanjobs.report.figures import scans_per_value
from scanjobs.report.rules import Comment

__all__ = ["write_compare_excel"]

_PERCENT_COLUMNS = frozenset({"baseline_pog_pct", "candidate_pog_pct", "pog_pct_difference"})


def _write_summary(
    wb: xlsxwriter.Workbook, w: CellWriter, compare: pd.DataFrame, sides: Mapping[str, str]
) -> None:
    ws = wb.add_worksheet("Summary")
    ws.set_column(0, 1, max(len(c.text) for c in Comment) + 2)
    ws.set_column(2, 3, 10)
    row = 0
    for label, source in sides.items():
        w.put(ws, row, 0, label, w.bold)
        w.put(ws, row, 1, source)
        row += 1
    w.put(ws, row, 0, "Rule", w.bold)
    w.put(ws, row, 1, CLASS_RULE)
    row += 2

    counts = class_counts(compare)
    scans, total = scans_per_value(compare, "class")
    w.header(ws, row, ["Class", "Rows", "Scans"])
    for kind in CompareClass:
        row += 1
        ws.write_string(row, 0, kind.text, fill_format(wb, kind.fill))
        ws.write_number(row, 1, counts[kind.text])
        ws.write_number(row, 2, scans.get(kind.text, 0))
    row += 1
    w.header(ws, row, ["Total", sum(counts.values()), total])
    row += 2

    comment_fills = {c.text: fill_format(wb, c.fill) for c in Comment}
    w.header(ws, row, ["Baseline comment", "Candidate comment", "Rows"])
    for baseline, candidate, n in transition_counts(compare):
        row += 1
        for col, text in ((0, baseline), (1, candidate)):
            w.put(ws, row, col, text, comment_fills.get(text) if text != NONE else None)
        ws.write_number(row, 2, n)


def write_compare_excel(compare: pd.DataFrame, path: Path, sides: Mapping[str, str]) -> None:
    """Write `compare` to `path` (sheets "Compare" and "Summary"; `sides` labels where each
    analysis came from), atomically; a workbook with the same content is left as it is."""
    with atomic_path(path, suffix=".xlsx", same=same_workbook) as tmp:
        wb = xlsxwriter.Workbook(str(tmp), WORKBOOK_OPTIONS)
        w = CellWriter(wb)
        columns = list(compare.columns)
        add_compare_rows = coloured_rows(
            wb,
            w,
            "Compare",
            SheetRows.of(compare),
            key="class",
            kinds=CompareClass,
            percent=[col in _PERCENT_COLUMNS for col in columns],
            frozen_columns=1,  # the source scan id stays in view
        )
        _write_summary(wb, w, compare, sides)
        wb.close()
        add_compare_rows(tmp)

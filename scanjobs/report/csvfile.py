"""The reports' CSV files: written from one frame, or from a frame's parts one after another."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from scanjobs.cells import csv_cell
from scanjobs.fsutil import atomic_open
from scanjobs.report.rules import NumbersKind, as_numbers, numbers_kind

__all__ = ["ID_COLUMNS", "id_kinds", "tidy_ids", "write_csv", "write_csv_parts"]

# The details' integral columns: ids and counts.
ID_COLUMNS = (
    "scan_id",
    "report_id",
    "realogram_id",
    "store_planogram_id",
    "planogram_id",
    "section_id",
    "ok",
    "wandering",
    "oos",
    "hole",
)


def id_kinds(details: pd.DataFrame) -> dict[str, NumbersKind]:
    """What `tidy_ids` makes of each id/count column of `details` (`combined_kind` of these
    gives a column in parts its kind)."""
    return {col: numbers_kind(details[col]) for col in ID_COLUMNS if col in details.columns}


def tidy_ids(details: pd.DataFrame, kinds: Mapping[str, NumbersKind] | None = None) -> pd.DataFrame:
    """Integral id/count columns as nullable ints: a NULL must not turn `123` into `123.0`. With
    `kinds`, `details` is a part of a frame whose columns have these kinds (`id_kinds`)."""
    kinds = id_kinds(details) if kinds is None else kinds
    out = details.copy(deep=False)  # the columns that change are replaced, the rest shared
    for col, kind in kinds.items():
        if col in out.columns:
            out[col] = as_numbers(out[col], kind)
    return out


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` atomically: no index, NULL as an empty cell (never 0), text cells that a
    spreadsheet would run as formulas quoted (`cells.py`); numeric columns are left as they are.

    Lines end in CRLF (RFC 4180, like csv.writer's CSVs): with LF, pandas leaves a lone CR in a
    name unquoted, and every reader splits that row in two."""
    write_csv_parts([frame], path)


def write_csv_parts(parts: Iterable[pd.DataFrame], path: Path) -> None:
    """`write_csv` of the frame whose rows are those of `parts` in turn (the header from the
    first; at least one part, with the frame's columns and dtypes): the same bytes, without
    that frame. Every cell is written from its own value alone."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        header = True
        for part in parts:
            _csv_ready(part).to_csv(fh, index=False, header=header, na_rep="", lineterminator="\r\n")
            header = False
        if header:
            raise ValueError(f"{path.name}: no part to write, not even the columns")


def _csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    safe = frame.copy(deep=False)  # the columns that change are replaced, the rest shared
    for col in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[col].dtype):
            values = safe[col]
            made_safe = _csv_safe(values)
            if made_safe is not values:
                safe[col] = made_safe
    return safe


def _csv_safe(values: pd.Series) -> pd.Series:
    """`csv_cell` of each value, decided once per distinct value (names repeat on thousands of
    rows, and few or none need a change): a 100k-scan report has millions of cells."""
    try:
        distinct = pd.unique(values.dropna())
    except TypeError:  # an unhashable value (a list, say): one at a time
        return values.map(csv_cell, na_action="ignore")
    changed = {v: safe for v in distinct if (safe := csv_cell(v)) is not v}
    if not changed:
        return values
    hit = values.isin(list(changed))
    return values.where(~hit, values.map(changed))

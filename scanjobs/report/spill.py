"""Frames set aside on disk while an analysis is built, read back one at a time to be written.

The analysis of 100k scans is built in batches (`modes/analyze/run.py`); holding every batch's
frames until the reports were written took a hundred megabytes more than one batch. Each frame is
pickled into one temporary file, which has no name (it leaves nothing behind, whatever ends the
process), in the reports' folder (a disk the user chose, not a /tmp that may live in memory).

The parts of one frame may differ in dtype (a count column fractional in one batch only is Float64
there, Int64 elsewhere): `common_dtypes` gives each column the dtype `pd.concat` of the parts would
give it, and `conform` casts a part to it, so that each part is written as that whole would be.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

__all__ = ["Spill", "common_dtypes", "conform", "empty_head"]


class Spill:
    """Frames put in an unnamed temporary file in `folder`; each read back by its number."""

    def __init__(self, folder: Path) -> None:
        # closed by close(): the file lives as long as its owner (AnalysisWriter)
        self._file = tempfile.TemporaryFile(dir=folder, prefix=".scanjobs-spill-")  # noqa: SIM115
        self._offsets: list[int] = []

    def put(self, frame: pd.DataFrame) -> int:
        """Store `frame` (a copy of it: the caller may let it go); its number."""
        self._file.seek(0, os.SEEK_END)
        self._offsets.append(self._file.tell())
        pickle.dump(frame, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        return len(self._offsets) - 1

    def get(self, number: int) -> pd.DataFrame:
        """The frame stored as `number`, as it was put."""
        self._file.seek(self._offsets[number])
        frame = pickle.load(self._file)  # our own file, written by put()
        if not isinstance(frame, pd.DataFrame):  # pragma: no cover - only put() writes the file
            raise TypeError(f"spilled frame {number} is a {type(frame).__name__}")
        return frame

    def close(self) -> None:
        self._file.close()


def empty_head(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame`'s columns and dtypes without its rows, holding none of its memory (a slice of
    no rows is a view that would keep the whole frame's arrays)."""
    return frame.iloc[:0].copy()


def common_dtypes(heads: Sequence[pd.DataFrame]) -> pd.Series:
    """Each column's dtype in `pd.concat` of frames with these `empty_head`s (pandas decides it
    from the parts' dtypes alone)."""
    return pd.concat(heads, ignore_index=True).dtypes


def conform(part: pd.DataFrame, dtypes: pd.Series) -> pd.DataFrame:
    """`part` with `dtypes` (`common_dtypes`), as its rows are in `pd.concat` of all the parts."""
    if list(part.columns) != list(dtypes.index):
        raise ValueError(f"a part's columns {list(part.columns)} are not the frame's {list(dtypes.index)}")
    changed = {col: dtype for col, dtype in dtypes.items() if part[col].dtype != dtype}
    return part.astype(changed) if changed else part

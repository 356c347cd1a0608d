"""The analysis' report files: from whole frames (`write_reports`), or built batch by batch
(`AnalysisWriter`, the analysis of a job: 100k scans are compared 20k pairs at a time)."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import pandas as pd

from scanjobs.fsutil import atomic_open
from scanjobs.report.csvfile import id_kinds, tidy_ids, write_csv, write_csv_parts
from scanjobs.report.excel import (
    SUMMARY_COLUMNS,
    ColumnWidths,
    SheetRows,
    write_analysis_excel,
    write_excel,
)
from scanjobs.report.rules import NumbersKind, combined_kind
from scanjobs.report.spill import Spill, common_dtypes, conform, empty_head

__all__ = ["AnalysisWriter", "ReportPaths", "write_json", "write_reports"]


@dataclass(frozen=True, slots=True)
class ReportPaths:
    """Where `write_reports` put each file."""

    source_details: Path
    target_details: Path
    analysis_csv: Path
    analysis_xlsx: Path
    job_json: Path | None = None  # the job's metadata (`write_reports(..., metadata=)`)

    @classmethod
    def in_folder(cls, output_dir: Path, *, metadata: bool = False) -> ReportPaths:
        """The files of the analysis written into `output_dir` (a job's output); with
        `metadata`, the job's metadata too."""
        return cls(
            source_details=output_dir / "source_scandetails.csv",
            target_details=output_dir / "target_scandetails.csv",
            analysis_csv=output_dir / "analysis_with_comments.csv",
            analysis_xlsx=output_dir / "analysis_with_comments.xlsx",
            job_json=output_dir / "analysis_job.json" if metadata else None,
        )


def write_reports(
    output_dir: Path,
    source_details: pd.DataFrame,
    target_details: pd.DataFrame,
    analysis: pd.DataFrame,
    metadata: Mapping[str, object] | None = None,
) -> ReportPaths:
    """Write the four report files into `output_dir` and return their paths; with `metadata`
    (the job and run that wrote them), also its sheet "Job" in the workbook and the sidecar
    `analysis_job.json`."""
    paths = ReportPaths.in_folder(output_dir, metadata=metadata is not None)
    write_csv(tidy_ids(source_details), paths.source_details)
    write_csv(tidy_ids(target_details), paths.target_details)
    write_csv(analysis, paths.analysis_csv)
    write_excel(analysis, paths.analysis_xlsx, metadata)
    if paths.job_json is not None:
        write_json(metadata or {}, paths.job_json)
    return paths


def write_json(document: Mapping[str, object], path: Path) -> None:
    """Write `document` as indented UTF-8 JSON, atomically."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")


class AnalysisWriter:
    """The reports of an analysis built in batches, written as `write_reports` writes them from
    the whole frames, without ever holding those: each batch of details or analysis rows is set
    aside on disk as it comes (`spill.py`), and each file is then written a batch (or a chunk) at
    a time. Held whole, the frames of 100k scans took a hundred megabytes more than one batch's.

    The analysis rows follow the batches. The details hold each scan's rows once, by scan id:
    what `pd.concat` of the batches' details, less its duplicate (scan_id, report_id) rows (a
    scan in the pairs of two batches is read twice), sorted by scan id (stable) would hold.
    """

    def __init__(self, output_dir: Path) -> None:
        output_dir.mkdir(parents=True, exist_ok=True)
        self.output_dir = output_dir
        self._spill = Spill(output_dir)
        self._sides = (_ByScan(self._spill), _ByScan(self._spill))
        self._parts: list[int] = []
        self._heads: list[pd.DataFrame] = []
        self._summary: list[pd.DataFrame] = []
        self.rows = 0

    def __enter__(self) -> AnalysisWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._spill.close()

    def add_details(self, source_details: pd.DataFrame, target_details: pd.DataFrame) -> None:
        """One batch's details of both sides, each in scan id order (as `scan_details` reads
        them)."""
        self._sides[0].add(source_details)
        self._sides[1].add(target_details)

    def add_analysis(self, analysis: pd.DataFrame) -> None:
        """The next analysis rows."""
        self._parts.append(self._spill.put(analysis))
        self._heads.append(empty_head(analysis))
        self._summary.append(analysis[list(SUMMARY_COLUMNS)].copy())
        self.rows += len(analysis)

    def summary(self) -> pd.DataFrame:
        """The analysis' SUMMARY_COLUMNS (what its figures read), every row of them."""
        if len(self._summary) > 1:
            self._summary = [pd.concat(self._summary, ignore_index=True)]
        return self._summary[0]

    def write(self, metadata: Mapping[str, object] | None = None) -> ReportPaths:
        """`write_reports` of the batches added (one at least) into the output folder."""
        if not self._parts or not self._sides[0].batches:
            raise ValueError("an analysis of no batch: nothing to write")
        paths = ReportPaths.in_folder(self.output_dir, metadata=metadata is not None)
        write_csv_parts(self._sides[0].parts(), paths.source_details)
        write_csv_parts(self._sides[1].parts(), paths.target_details)
        dtypes = common_dtypes(self._heads)
        widths = ColumnWidths(dtypes.index)

        def measured() -> Iterator[pd.DataFrame]:
            for part in self._analysis(dtypes):
                widths.add(part)
                yield part

        write_csv_parts(measured(), paths.analysis_csv)
        rows = SheetRows(list(dtypes.index), self.rows, widths.widths(), lambda: self._analysis(dtypes))
        write_analysis_excel(paths.analysis_xlsx, rows, self.summary(), metadata)
        if paths.job_json is not None:
            write_json(metadata or {}, paths.job_json)
        return paths

    def _analysis(self, dtypes: pd.Series) -> Iterator[pd.DataFrame]:
        for number in self._parts:
            yield conform(self._spill.get(number), dtypes)


# Rows of a side's details in one spilled chunk: a scan's rows are never split between chunks.
CHUNK_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class _Chunk:
    number: int  # in the spill
    first: int  # its first and last scan ids
    last: int


class _ByScan:
    """One side's details, batch by batch, read back merged by scan id (`AnalysisWriter`).

    Each batch is kept in scan id order, in chunks of about CHUNK_ROWS rows, each holding all the
    batch's rows of its scans. Reading back merges the batches: all the rows of the scans up to
    the smallest last scan id of the batches' next chunks are taken at once, so no more than one
    chunk of each batch is read at a time (one in all when the batches follow each other).
    """

    KEYS = ["scan_id", "report_id"]

    def __init__(self, spill: Spill) -> None:
        self._spill = spill
        self.batches: list[list[_Chunk]] = []
        self._heads: list[pd.DataFrame] = []
        self._kinds: list[dict[str, NumbersKind]] = []
        self._keys: pd.DataFrame | None = None  # (scan_id, report_id) of every row kept

    def add(self, details: pd.DataFrame) -> None:
        self._heads.append(empty_head(details))
        keys = details[self.KEYS] if self._keys is None else pd.concat([self._keys, details[self.KEYS]])
        again = keys.duplicated().to_numpy()
        self._keys = keys[~again].reset_index(drop=True)
        dropped = again[len(again) - len(details) :]
        kept = details[~dropped] if dropped.any() else details
        if not kept["scan_id"].is_monotonic_increasing:
            kept = kept.sort_values("scan_id", kind="stable")
        self._kinds.append(id_kinds(kept))
        ids = kept["scan_id"].to_numpy(dtype=np.int64)
        chunks = []
        start = 0
        while start < len(kept):
            end = min(start + CHUNK_ROWS, len(kept))
            while end < len(kept) and ids[end] == ids[end - 1]:
                end += 1  # the rest of the scan's rows
            number = self._spill.put(kept.iloc[start:end])
            chunks.append(_Chunk(number, int(ids[start]), int(ids[end - 1])))
            start = end
        self.batches.append(chunks)

    def parts(self) -> Iterator[pd.DataFrame]:
        """The merged rows, in parts, each as that whole frame's `tidy_ids` has it (the first
        part has the columns even when there are no rows)."""
        dtypes = common_dtypes(self._heads)
        kinds = {col: combined_kind(k[col] for k in self._kinds) for col in id_kinds(self._heads[0])}
        pending = [deque(chunks) for chunks in self.batches]
        opened: dict[int, tuple[pd.DataFrame, np.ndarray, int]] = {}  # batch -> chunk, ids, position
        yield tidy_ids(conform(self._heads[0], dtypes), kinds)
        while any(pending):
            bound = min(queue[0].last for queue in pending if queue)
            pieces = []
            for batch, queue in enumerate(pending):
                if not queue or queue[0].first > bound:
                    continue
                if batch not in opened:
                    chunk = self._spill.get(queue[0].number)
                    opened[batch] = (chunk, chunk["scan_id"].to_numpy(dtype=np.int64), 0)
                chunk, ids, position = opened[batch]
                end = int(np.searchsorted(ids, bound, side="right"))
                pieces.append(conform(chunk.iloc[position:end], dtypes))
                if end == len(chunk):
                    queue.popleft()
                    del opened[batch]
                else:
                    opened[batch] = (chunk, ids, end)
            if len(pieces) == 1:
                rows = pieces[0]
            else:  # a scan read in several batches: its rows in the batches' order
                rows = pd.concat(pieces, ignore_index=True).sort_values("scan_id", kind="stable")
            yield tidy_ids(rows, kinds)

"""An analysis written batch by batch (`AnalysisWriter`, each batch set aside on disk) gives the
files `write_reports` writes from the whole frames: the batches' analysis rows in turn, and each
side's details once per (scan, report), by scan id."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scanjobs.report.writer as writer_module
from scanjobs.report import AnalysisWriter, write_reports
from scanjobs.report.rules import DETAIL_COLUMNS, build_analysis

Batch = tuple[pd.DataFrame, pd.DataFrame, list[tuple[int, int | None]]]
DTYPES = {
    "scan_id": "Int64",
    "report_id": "Int64",
    "realogram_id": "Int64",
    "bays": "Int64",
    "store_planogram_id": "Int64",
    "planogram_id": "Int64",
    "section_id": "Int64",
    "pre_pog_pct": "Float64",
    "post_pog_pct": "Float64",
    "pre_osa_pct": "Float64",
    "post_osa_pct": "Float64",
    "is_additional_section": "boolean",
}
FILES = ("analysis_with_comments.csv", "source_scandetails.csv", "target_scandetails.csv")


def rep(scan: int, report: int | None, ok: float | None = 3, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(DETAIL_COLUMNS)
    if report is not None:
        row.update(
            report_id=report,
            planogram_name="P",
            section_name=f"S{report % 3}",
            is_additional_section=report % 4 == 0,
            pre_pog_pct=40.0 + report / 10,
            store_planogram_id=7,
            section_id=report % 5,
            ok=ok,
            map_by="majority",
        )
    row.update(scan_id=scan, scan_status="done", **kw)
    return row


def details(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """A frame as `scan_details` reads it: in (scan, report) order, its dtypes; a count column
    Int64, or Float64 where a count is fractional."""
    frame = pd.DataFrame(list(rows), columns=list(DETAIL_COLUMNS)).astype(DTYPES)
    for col in ("ok", "wandering", "oos", "hole"):
        values = frame[col].dropna()
        fractional = bool(len(values)) and any(float(v) != int(v) for v in values)
        frame[col] = frame[col].astype("Float64" if fractional else "Int64")
    return frame.sort_values(["scan_id", "report_id"], ignore_index=True)


def whole(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The details of several batches, as the analysis kept them before it wrote batch by batch."""
    frame = pd.concat(frames, ignore_index=True).drop_duplicates(["scan_id", "report_id"], ignore_index=True)
    return frame.sort_values("scan_id", kind="stable", ignore_index=True)


def analyses(batches: Sequence[Batch], processed: set[int]) -> list[pd.DataFrame]:
    return [build_analysis(source, target, pairs, processed) for source, target, pairs in batches]


def parts_of(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as z:
        return {
            name: hashlib.sha256(z.read(name)).hexdigest()
            for name in z.namelist()
            if name != "docProps/core.xml"  # the time of the save
        }


def write_both(tmp_path: Path, batches: Sequence[Batch], processed: set[int]) -> tuple[Path, Path]:
    """(the files written from the whole frames, those written batch by batch)."""
    parts = analyses(batches, processed)
    metadata = {"job": {"name": "batched"}}
    expected, got = tmp_path / "whole", tmp_path / "batched"
    write_reports(
        expected,
        whole([b[0] for b in batches]),
        whole([b[1] for b in batches]),
        pd.concat(parts, ignore_index=True),
        metadata,
    )
    with AnalysisWriter(got) as reports:
        for (source, target, _), analysis in zip(batches, parts, strict=True):
            reports.add_details(source, target)
            for start in range(0, len(analysis), 2):  # analysis rows may come in more parts
                reports.add_analysis(analysis.iloc[start : start + 2])
            if analysis.empty:
                reports.add_analysis(analysis)
        assert reports.rows == sum(len(p) for p in parts)
        reports.write(metadata)
    return expected, got


def test_batches_out_of_order_with_a_scan_read_twice_give_the_whole_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches whose scans are not in id order, a scan read in two batches (the second time with
    one more report), a fractional count in one batch only (the whole column prints as floats),
    and chunks of two rows (a scan of three reports stays in one chunk)."""
    monkeypatch.setattr(writer_module, "CHUNK_ROWS", 2)
    batches: list[Batch] = [
        (
            details([rep(10, 1), rep(11, 2), rep(11, 3), rep(11, 4), rep(12, None), rep(5, 5)]),
            details([rep(110, 21), rep(111, 22), rep(111, 23), rep(112, 24)]),
            [(10, 110), (11, 111), (12, 112), (5, 105)],
        ),
        (
            details([rep(1, 6, ok=2.5), rep(2, 7), rep(3, 8)]),
            details([rep(101, 26), rep(102, 27, ok=1.5), rep(103, None)]),
            [(1, 101), (2, 102), (3, 103), (4, None)],
        ),
        (
            details([rep(5, 5), rep(5, 9), rep(20, 10)]),
            details([rep(105, 29), rep(120, 30)]),
            [(5, 105), (20, 120)],
        ),
    ]
    expected, got = write_both(tmp_path, batches, {101, 102, 103, 105, 110, 111, 112, 120})
    for name in FILES:
        assert (got / name).read_bytes() == (expected / name).read_bytes(), name
    assert "2.5" in (got / "source_scandetails.csv").read_text()
    assert parts_of(got / "analysis_with_comments.xlsx") == parts_of(expected / "analysis_with_comments.xlsx")
    assert (got / "analysis_job.json").read_bytes() == (expected / "analysis_job.json").read_bytes()
    # the batches were set aside in a file with no name: nothing is left beside the reports
    assert sorted(p.name for p in got.iterdir()) == sorted(p.name for p in expected.iterdir())


def test_one_batch_without_rows_writes_the_headers(tmp_path: Path) -> None:
    empty = details([])
    expected, got = write_both(tmp_path, [(empty, empty, [])], set())
    for name in FILES:
        assert (got / name).read_bytes() == (expected / name).read_bytes(), name
    assert (got / "source_scandetails.csv").read_text().startswith("scan_id,scan_status,")


def test_nothing_to_write_without_a_batch(tmp_path: Path) -> None:
    with AnalysisWriter(tmp_path) as reports, pytest.raises(ValueError, match="no batch"):
        reports.write()


scan_rows = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=12),  # scan
        st.one_of(st.none(), st.integers(min_value=1, max_value=6)),  # report (None: no report)
        st.sampled_from([3, 0, None, 2.5]),  # a count
    ),
    max_size=8,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(scan_rows, scan_rows), min_size=1, max_size=4),
    st.integers(min_value=1, max_value=4),
)
def test_any_batches_give_the_whole_reports_csvs(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    drawn: list[tuple[list[tuple[int, int | None, float | None]], ...]],
    chunk_rows: int,
) -> None:
    monkeypatch.setattr(writer_module, "CHUNK_ROWS", chunk_rows)

    def side(rows: list[tuple[int, int | None, float | None]], offset: int) -> pd.DataFrame:
        unique = {(scan, report): ok for scan, report, ok in rows}  # one row per (scan, report)
        return details([rep(scan + offset, report, ok) for (scan, report), ok in unique.items()])

    batches: list[Batch] = []
    for source_rows, target_rows in drawn:
        source, target = side(source_rows, 0), side(target_rows, 100)
        scans = sorted(set(source["scan_id"].tolist()))
        batches.append((source, target, [(s, s + 100 if s % 3 else None) for s in scans]))
    processed = {s + 100 for s in range(1, 13)}
    expected, got = write_both(tmp_path_factory.mktemp("reports"), batches, processed)
    for name in FILES:
        assert (got / name).read_bytes() == (expected / name).read_bytes(), name

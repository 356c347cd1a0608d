"""The compare rules without I/O: row matching, the ranking, the POG % tie-break, one-sided rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from scanjobs.report import write_csv
from scanjobs.report.compare import (
    COMPARE_COLUMNS,
    RANKING,
    build_compare,
    class_counts,
    read_analysis,
    transition_counts,
)
from scanjobs.report.rules import ANALYSIS_COLUMNS, Comment

COLUMNS = [
    "source_scan_id",
    "target_scan_id",
    "source_section_name",
    "target_section_name",
    "target_planogram_name",
    "target_pre_pog_pct",
    "comment",
]


def analysis(*rows: tuple[object, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=COLUMNS)
    return frame.astype({"source_scan_id": "Int64", "target_scan_id": "Int64", "target_pre_pog_pct": float})


def one(base: tuple[object, ...], cand: tuple[object, ...]) -> str:
    return str(build_compare(analysis(base), analysis(cand))["class"].iloc[0])


def test_every_comment_is_ranked_or_judges_nothing() -> None:
    ranked = {c for group in RANKING for c in group}
    assert ranked | {
        Comment.NOT_COPIED,
        Comment.SOURCE_NOT_FOUND,
        Comment.TARGET_NOT_FOUND,
        Comment.TARGET_NOT_PROCESSED,
        Comment.NO_REPORTS,
    } == set(Comment)
    assert RANKING[0] == (Comment.NO_ISSUES,)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ("No Issues", "Wrong POG Name Mapping", "regressed"),
        ("Wrong POG Name Mapping", "No Issues", "improved"),
        ("Same POG Name but Different Section", "Wrong POG Name Mapping", "regressed"),
        ("Wrong POG Name Mapping", "Target Report Missing", "regressed"),
        ("No Issues", "No Issues", "unchanged"),
        ("Not Copied", "No Issues", "not_comparable"),
        ("Target Not Processed", "Target Not Processed", "unchanged"),
        ("Target Processing Failed (error)", "Target Processing Failed (interrupted)", "unchanged"),
    ],
)
def test_the_ranking_decides(before: str, after: str, expected: str) -> None:
    assert one((1, 11, "A", "A", "P", 50.0, before), (1, 21, "A", "A", "P", 50.0, after)) == expected


def test_the_same_rank_is_decided_by_pog_percent() -> None:
    assert (
        one((1, 11, "A", "A", "P", 50.0, "No Issues"), (1, 21, "A", "A", "P", 55.0, "No Issues"))
        == "improved"
    )
    assert (
        one((1, 11, "A", "A", "P", 50.0, "No Issues"), (1, 21, "A", "A", "P", 45.0, "No Issues"))
        == "regressed"
    )
    assert (
        one((1, 11, "A", "A", "P", None, "No Issues"), (1, 21, "A", "A", "P", 45.0, "No Issues"))
        == "unchanged"
    )


def test_rows_match_by_scan_and_section_and_one_sided_rows_are_kept() -> None:
    base = analysis(
        (1, 11, "A", "A", "P", 50.0, "No Issues"),
        (1, 11, "B", "B", "P", 50.0, "No Issues"),
        (1, 11, None, "X", "P", 50.0, "Source Report Missing"),
        (2, 12, "A", "A", "P", 50.0, "No Issues"),
    )
    cand = analysis(
        (1, 21, "B", "Q", "R", 40.0, "Wrong POG Name Mapping"),
        (1, 21, "A", "A", "P", 50.0, "No Issues"),
        (3, 23, "A", "A", "P", 50.0, "No Issues"),
    )
    out = build_compare(base, cand)
    assert list(out.columns) == list(COMPARE_COLUMNS)
    got = out[["source_scan_id", "source_section_name", "class"]].astype(object)
    assert [tuple(None if pd.isna(v) else v for v in row) for row in got.itertuples(index=False)] == [
        (1, "A", "unchanged"),
        (1, "B", "regressed"),
        (1, None, "only_in_baseline"),
        (2, "A", "only_in_baseline"),
        (3, "A", "only_in_candidate"),
    ]
    b_row = out.iloc[1]
    assert bool(b_row["pog_changed"]) and bool(b_row["section_changed"])
    assert b_row["pog_pct_difference"] == -10.0
    assert class_counts(out) == {
        "improved": 0,
        "regressed": 1,
        "unchanged": 1,
        "only_in_baseline": 2,
        "only_in_candidate": 1,
        "not_comparable": 0,
    }
    assert ("No Issues", "(none)", 1) in transition_counts(out)


def test_read_analysis_keeps_text_and_refuses_other_files(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        [[1, 11, *[None] * (len(ANALYSIS_COLUMNS) - 2)]], columns=list(ANALYSIS_COLUMNS)
    ).astype(object)
    frame.loc[0, ["source_section_name", "target_section_name", "comment"]] = ["NA", "null", "No Issues"]
    write_csv(frame, tmp_path / "a.csv")
    read = read_analysis(tmp_path / "a.csv")
    assert read.loc[0, "source_section_name"] == "NA" and read.loc[0, "target_section_name"] == "null"
    assert pd.isna(read.loc[0, "target_planogram_name"])
    pd.DataFrame({"x": [1]}).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(ValueError, match="is not an analysis: it lacks source_scan_id"):
        read_analysis(tmp_path / "b.csv")

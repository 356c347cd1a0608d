"""Comparison rules: each rule, precedence, NULL handling, pairing and row shape."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from scanjobs.report.rules import (
    ANALYSIS_COLUMNS,
    DETAIL_COLUMNS,
    Comment,
    build_analysis,
    comment_for,
)


def rep(scan: int, report: int, pog: str | None = "P", section: str | None = "S", **kw: Any) -> dict:
    row: dict[str, Any] = dict.fromkeys(DETAIL_COLUMNS)
    row.update(
        scan_id=scan,
        scan_status="done",
        report_id=report,
        planogram_name=pog,
        section_name=section,
        is_additional_section=False,
        pre_pog_pct=50.0,
        store_planogram_id=report * 10,
        section_id=report * 100,
        ok=1,
        map_by="majority",
    )
    row.update(kw)
    return row


def no_report(scan: int) -> dict:
    row: dict[str, Any] = dict.fromkeys(DETAIL_COLUMNS)
    row.update(scan_id=scan, scan_status="done")
    return row


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(DETAIL_COLUMNS))


def analyse(source: list[dict], target: list[dict], pairs: list, processed: set) -> pd.DataFrame:
    return build_analysis(frame(*source), frame(*target), pairs, processed)


# --- comment_for, the pure row rule ------------------------------------------------------------

BASE = {"planogram_name": "P", "section_name": "S", "is_additional_section": False, "pre_pog_pct": 50.0}


@pytest.mark.parametrize(
    ("target_changes", "expected"),
    [
        ({"planogram_name": "Q"}, Comment.WRONG_POG),
        ({"section_name": "T"}, Comment.DIFFERENT_SECTION),
        ({"is_additional_section": True}, Comment.TARGET_ADDITIONAL),
        ({"pre_pog_pct": 50.1}, Comment.HIGHER_POG),
        ({}, Comment.NO_ISSUES),
        ({"pre_pog_pct": 49.0}, Comment.NO_ISSUES),
    ],
)
def test_each_rule(target_changes: dict, expected: Comment) -> None:
    assert comment_for(BASE, {**BASE, **target_changes}) is expected


def test_first_match_wins() -> None:
    everything = {
        "planogram_name": "Q",
        "section_name": "T",
        "is_additional_section": True,
        "pre_pog_pct": 99.0,
    }
    assert comment_for(BASE, everything) is Comment.WRONG_POG
    assert comment_for(BASE, {**everything, "planogram_name": "P"}) is Comment.DIFFERENT_SECTION
    no_names = {**everything, "planogram_name": "P", "section_name": "S"}
    assert comment_for(BASE, no_names) is Comment.TARGET_ADDITIONAL


@pytest.mark.parametrize("null", [None, float("nan"), pd.NA, np.nan])
def test_two_null_names_are_equal(null: object) -> None:
    both = {**BASE, "planogram_name": null, "section_name": null}
    assert comment_for(both, dict(both)) is Comment.NO_ISSUES
    assert (
        comment_for({**BASE, "planogram_name": None}, {**BASE, "planogram_name": null}) is Comment.NO_ISSUES
    )


def test_null_versus_value_differs() -> None:
    assert comment_for({**BASE, "planogram_name": None}, BASE) is Comment.WRONG_POG
    assert comment_for(BASE, {**BASE, "planogram_name": None}) is Comment.WRONG_POG
    assert comment_for(BASE, {**BASE, "section_name": pd.NA}) is Comment.DIFFERENT_SECTION


def test_equal_pog_pct_is_not_higher() -> None:
    assert comment_for(BASE, dict(BASE)) is Comment.NO_ISSUES


@pytest.mark.parametrize(
    ("source_pct", "target_pct"), [(None, 10.0), (10.0, None), (None, None), (math.nan, 10.0), (pd.NA, 10.0)]
)
def test_null_pog_pct_is_never_higher(source_pct: object, target_pct: object) -> None:
    source = {**BASE, "pre_pog_pct": source_pct}
    target = {**BASE, "pre_pog_pct": target_pct}
    assert comment_for(source, target) is Comment.NO_ISSUES


def test_additional_null_is_false() -> None:
    assert (
        comment_for({**BASE, "is_additional_section": None}, {**BASE, "is_additional_section": True})
        is Comment.TARGET_ADDITIONAL
    )
    assert comment_for(BASE, {**BASE, "is_additional_section": None}) is Comment.NO_ISSUES
    both = {**BASE, "is_additional_section": True}
    assert comment_for(both, dict(both)) is Comment.NO_ISSUES


def test_comment_texts_and_fills() -> None:
    assert Comment.WRONG_POG.text == "Wrong POG Name Mapping"
    assert Comment.WRONG_POG.fill == "FFCCCC"
    assert Comment.NO_ISSUES.fill == "CCFFCC"
    assert Comment.from_text("Not Copied") is Comment.NOT_COPIED
    assert len({c.text for c in Comment}) == len(Comment)


# --- build_analysis ------------------------------------------------------------------------------


def test_columns_in_order() -> None:
    out = analyse([rep(1, 1)], [rep(11, 5)], [(1, 11)], {11})
    assert list(out.columns) == list(ANALYSIS_COLUMNS)
    assert list(out.columns[:6]) == [
        "source_scan_id",
        "target_scan_id",
        "source_store_planogram_id",
        "target_store_planogram_id",
        "source_planogram_name",
        "target_planogram_name",
    ]
    assert list(out.columns[-2:]) == ["comment", "MAv2_Map_by"]


def test_rules_row_by_row() -> None:
    source = [
        rep(1, 1, "P", "A"),
        rep(2, 2, "P", "A"),
        rep(3, 3, "P", "A"),
        rep(4, 4, "P", "A"),
        rep(5, 5, "P", "A"),
    ]
    target = [
        rep(11, 11, "Q", "A"),
        rep(12, 12, "P", "B"),
        rep(13, 13, "P", "A", is_additional_section=True),
        rep(14, 14, "P", "A", pre_pog_pct=70.0),
        rep(15, 15, "P", "A", map_by="category"),
    ]
    out = analyse(source, target, [(i, 10 + i) for i in range(1, 6)], {11, 12, 13, 14, 15})
    assert list(out["comment"]) == [
        Comment.WRONG_POG.text,
        Comment.DIFFERENT_SECTION.text,
        Comment.TARGET_ADDITIONAL.text,
        Comment.HIGHER_POG.text,
        Comment.NO_ISSUES.text,
    ]
    assert out["MAv2_Map_by"].iloc[4] == "category"


def test_pairing_by_section_name_then_order() -> None:
    source = [rep(1, 1, section="A"), rep(1, 2, section="B"), rep(1, 3, section="C")]
    # Target reports in another id order: B and C match by name, A and X by what is left.
    target = [rep(11, 7, section="C"), rep(11, 8, section="X"), rep(11, 9, section="B")]
    out = analyse(source, target, [(1, 11)], {11})
    pairs = list(zip(out["source_section_name"], out["target_section_name"], strict=True))
    assert pairs == [("A", "X"), ("B", "B"), ("C", "C")]
    assert list(out["comment"]) == [
        Comment.DIFFERENT_SECTION.text,
        Comment.NO_ISSUES.text,
        Comment.NO_ISSUES.text,
    ]


def test_null_section_names_pair_with_each_other() -> None:
    source = [rep(1, 1, section="A"), rep(1, 2, section=None)]
    target = [rep(11, 5, section=None), rep(11, 6, section="A")]
    out = analyse(source, target, [(1, 11)], {11})
    assert list(out["comment"]) == [Comment.NO_ISSUES.text, Comment.NO_ISSUES.text]
    assert out["target_section_name"].isna().tolist() == [False, True]


def test_unmatched_target_report_gets_its_own_row() -> None:
    source = [rep(1, 1, section="A")]
    target = [rep(11, 5, section="A"), rep(11, 6, section="Extra", pre_pog_pct=12.5)]
    out = analyse(source, target, [(1, 11)], {11})
    assert len(out) == 2
    extra = out.iloc[1]
    assert extra["target_section_name"] == "Extra"
    assert extra["source_scan_id"] == 1 and extra["target_scan_id"] == 11
    assert pd.isna(extra["source_section_name"]) and pd.isna(extra["source_pre_pog_pct"])
    assert extra["comment"] == Comment.NO_SOURCE_REPORT.text


def test_unmatched_source_report_has_empty_target() -> None:
    source = [rep(1, 1, section="A"), rep(1, 2, section="B")]
    out = analyse(source, [rep(11, 5, section="A")], [(1, 11)], {11})
    assert list(out["comment"]) == [Comment.NO_ISSUES.text, Comment.NO_TARGET_REPORT.text]
    assert (
        out.iloc[1][[c for c in out.columns if c.startswith("target_") and c != "target_scan_id"]]
        .isna()
        .all()
    )


def test_not_copied() -> None:
    source = [rep(1, 1, section="A"), rep(1, 2, section="B")]
    out = analyse(source, [rep(11, 5)], [(1, None)], {11})
    assert list(out["comment"]) == [Comment.NOT_COPIED.text] * 2
    assert out["target_scan_id"].isna().all()
    assert out["target_planogram_name"].isna().all()
    assert list(out["source_section_name"]) == ["A", "B"]


def test_not_copied_without_reports_still_has_a_row() -> None:
    out = analyse([no_report(1)], [], [(1, None)], set())
    assert len(out) == 1 and out["comment"].iloc[0] == Comment.NOT_COPIED.text


def test_target_not_processed_reads_no_target_data() -> None:
    source = [rep(1, 1, section="A")]
    target = [rep(11, 5, section="A", pre_pog_pct=90.0)]  # partial data of a pending scan
    out = analyse(source, target, [(1, 11)], set())
    row = out.iloc[0]
    assert row["comment"] == Comment.TARGET_NOT_PROCESSED.text
    assert row["target_scan_id"] == 11
    assert row["source_section_name"] == "A"
    assert pd.isna(row["target_section_name"]) and pd.isna(row["target_pre_pog_pct"])


def test_no_reports_on_either_side() -> None:
    out = analyse([no_report(1)], [no_report(11)], [(1, 11)], {11})
    assert len(out) == 1 and out["comment"].iloc[0] == Comment.NO_REPORTS.text


def test_no_borrowing_between_scans() -> None:
    # Legacy compared a pair with an unknown target against the first target row of the table.
    source = [rep(1, 1, pog="P1"), rep(2, 2, pog="P2"), rep(3, 3, pog="P3")]
    target = [rep(11, 5, pog="P1"), no_report(12)]
    out = analyse(source, target, [(1, 11), (2, 12), (3, None)], {11, 12})
    assert list(out["source_scan_id"]) == [1, 2, 3]
    assert list(out["target_planogram_name"].fillna("<empty>")) == ["P1", "<empty>", "<empty>"]
    assert list(out["comment"]) == [
        Comment.NO_ISSUES.text,
        Comment.NO_TARGET_REPORT.text,
        Comment.NOT_COPIED.text,
    ]


def test_row_order_follows_pairs_then_source_reports() -> None:
    source = [rep(2, 4, section="B"), rep(2, 3, section="A"), rep(1, 1, section="Z")]
    target = [rep(12, 8, section="A"), rep(12, 9, section="B"), rep(11, 7, section="Z")]
    out = analyse(source, target, [(2, 12), (1, 11)], {11, 12})
    assert list(out["source_scan_id"]) == [2, 2, 1]
    assert list(out["source_section_name"]) == ["A", "B", "Z"]  # report_id order within a scan


def test_nulls_stay_empty_and_ids_stay_integers() -> None:
    out = analyse([rep(1, 1, pre_pog_pct=None, ok=None)], [rep(11, 5)], [(1, 11)], {11})
    row = out.iloc[0]
    assert pd.isna(row["source_pre_pog_pct"]) and pd.isna(row["source_ok"])
    assert row["target_ok"] == 1 and str(out["source_store_planogram_id"].dtype) == "Int64"
    assert row["comment"] == Comment.NO_ISSUES.text


def test_duplicate_detail_rows_do_not_multiply() -> None:
    out = analyse([rep(1, 1), rep(1, 1)], [rep(11, 5), rep(11, 5)], [(1, 11)], {11})
    assert len(out) == 1


def test_vectorised_comments_agree_with_comment_for() -> None:
    rng = np.random.default_rng(7)
    names, sections = ["P", "Q", None], ["A", "B", None]
    source, target, pairs = [], [], []
    for i in range(300):

        def draw(scan: int, report: int) -> dict:
            return rep(
                scan,
                report,
                pog=names[rng.integers(3)],
                section=sections[rng.integers(3)],
                is_additional_section=[True, False, None][rng.integers(3)],
                pre_pog_pct=[None, 10.0, 20.0][rng.integers(3)],
            )

        source.append(draw(i, i))
        target.append(draw(10_000 + i, 10_000 + i))
        pairs.append((i, 10_000 + i))
    out = analyse(source, target, pairs, {t for _, t in pairs})
    for row, s, t in zip(out.itertuples(), source, target, strict=True):
        assert row.comment == comment_for(s, t).text


# --- how processing ended (issue 13, point 2) ---------------------------------------------------


@pytest.mark.parametrize("status", ["error", "interrupted"])
def test_failed_target_processing_says_so_and_reads_no_target_data(status: str) -> None:
    """issue 13, point 2: a target scan that ended in `error` or `interrupted` was "Target Not
    Processed", as if it might still come; it gets its own grey comment with the status."""
    source = [rep(1, 1, section="A"), rep(1, 2, section="B"), rep(2, 3, section="C")]
    target = [rep(11, 5, section="A"), rep(12, 6, section="C")]  # what a failed scan left is not read
    out = build_analysis(
        frame(*source), frame(*target), [(1, 11), (2, 12)], {12}, failed_targets={11: status}
    )
    failed = Comment.processing_failed(status)
    assert failed.text == f"Target Processing Failed ({status})" and failed.fill == "D9D9D9"
    assert list(out["comment"]) == [failed.text, failed.text, Comment.NO_ISSUES.text]
    assert list(out["source_section_name"]) == ["A", "B", "C"]
    assert out["target_section_name"].iloc[:2].isna().all()
    assert list(out["target_scan_id"]) == [11, 11, 12]


def test_failed_target_without_source_reports_has_one_row() -> None:
    """issue 13, point 2: the pair still gets its row when the source scan has no report."""
    out = build_analysis(frame(no_report(1)), frame(), [(1, 11)], set(), failed_targets={11: "error"})
    assert list(out["comment"]) == ["Target Processing Failed (error)"]


def test_done_target_without_reports_is_target_report_missing() -> None:
    """issue 13, point 2: a `done` target scan without a report (has_report false) is finished:
    each source report says "Target Report Missing"."""
    out = analyse([rep(1, 1, section="A"), rep(1, 2, section="B")], [no_report(11)], [(1, 11)], {11})
    assert list(out["comment"]) == [Comment.NO_TARGET_REPORT.text] * 2
    assert Comment.NO_TARGET_REPORT.text == "Target Report Missing"


def test_only_failure_statuses_have_a_failure_comment() -> None:
    """issue 13, point 2: the platform's finished statuses are done, error and interrupted."""
    for status in ("done", "in progress", "action created", "failed", ""):
        with pytest.raises(ValueError, match="not a failed processing status"):
            Comment.processing_failed(status)

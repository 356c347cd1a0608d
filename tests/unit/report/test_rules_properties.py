"""The analysis rules, property-based: the row rule treats every spelling of NULL alike and a
report never differs from itself; the table has one row per report (source and target alike),
rows in pair order, and the vectorised comments are the row rule's. The examples are in
tests/unit/report/test_rules.py."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from scanjobs.report.rules import (
    ANALYSIS_COLUMNS,
    DETAIL_COLUMNS,
    Comment,
    build_analysis,
    comment_for,
    integral_as_int,
)

RULE_KEYS = ("planogram_name", "section_name", "is_additional_section", "pre_pog_pct")
RULE_COMMENTS = {
    Comment.WRONG_POG,
    Comment.DIFFERENT_SECTION,
    Comment.TARGET_ADDITIONAL,
    Comment.HIGHER_POG,
    Comment.NO_ISSUES,
}
NULLS = [None, float("nan"), pd.NA, np.nan]

nulls = st.sampled_from(NULLS)
names = st.one_of(nulls, st.sampled_from(["P", "Q", "S", "T", ""]), st.text(max_size=3))
flags = st.one_of(nulls, st.booleans(), st.sampled_from([0, 1]))
percents = st.one_of(nulls, st.floats(min_value=0, max_value=100), st.integers(min_value=0, max_value=100))
reports = st.fixed_dictionaries(
    {},
    optional={
        "planogram_name": names,
        "section_name": names,
        "is_additional_section": flags,
        "pre_pog_pct": percents,
    },
)


def is_null(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def as_none(report: dict[str, Any]) -> dict[str, Any]:
    """The same report with every NULL spelt None, and missing keys given as None."""
    return {key: None if is_null(report.get(key)) else report[key] for key in RULE_KEYS}


# --- comment_for ---------------------------------------------------------------------------------


@given(reports, reports)
def test_the_row_rule_gives_one_of_the_five_rule_comments(
    source: dict[str, Any], target: dict[str, Any]
) -> None:
    assert comment_for(source, target) in RULE_COMMENTS


@given(reports)
def test_a_report_compared_with_itself_has_no_issues(report: dict[str, Any]) -> None:
    assert comment_for(report, dict(report)) is Comment.NO_ISSUES


@given(reports, reports, st.data())
def test_every_spelling_of_null_and_a_missing_key_mean_the_same(
    source: dict[str, Any], target: dict[str, Any], data: st.DataObject
) -> None:
    expected = comment_for(as_none(source), as_none(target))
    # Each NULL spelt another way, or left out (a missing key).
    respelt = [
        {
            k: data.draw(nulls) if v is None else v
            for k, v in as_none(side).items()
            if v is not None or data.draw(st.booleans())
        }
        for side in (source, target)
    ]
    assert comment_for(*respelt) is expected
    assert comment_for(source, target) is expected


@given(reports, reports)
def test_the_first_rule_that_applies_decides(source: dict[str, Any], target: dict[str, Any]) -> None:
    s, t = as_none(source), as_none(target)
    comment = comment_for(source, target)
    pog_differs = s["planogram_name"] != t["planogram_name"]
    section_differs = s["section_name"] != t["section_name"]
    assert (comment is Comment.WRONG_POG) == pog_differs
    if not pog_differs:
        assert (comment is Comment.DIFFERENT_SECTION) == section_differs
    if comment is Comment.HIGHER_POG:
        # Only two known percentages, the target's above the source's, make the target "higher".
        assert s["pre_pog_pct"] is not None and t["pre_pog_pct"] is not None
        assert float(t["pre_pog_pct"]) > float(s["pre_pog_pct"])
    if comment is Comment.TARGET_ADDITIONAL:
        assert bool(t["is_additional_section"]) and not s["is_additional_section"]


@given(reports, reports, st.floats(min_value=0, max_value=100), st.floats(min_value=0, max_value=100))
def test_a_lower_or_equal_target_percentage_is_never_higher(
    source: dict[str, Any], target: dict[str, Any], a: float, b: float
) -> None:
    low, high = sorted((a, b))
    comment = comment_for({**source, "pre_pog_pct": high}, {**target, "pre_pog_pct": low})
    assert comment is not Comment.HIGHER_POG


@given(st.sampled_from(list(Comment)))
def test_a_comment_is_found_again_by_its_text(comment: Comment) -> None:
    assert Comment.from_text(comment.text) is comment


@given(st.text().filter(lambda t: t not in {c.text for c in Comment}))
def test_an_unknown_comment_text_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        Comment.from_text(text)


# --- integral_as_int -----------------------------------------------------------------------------


@given(st.lists(st.one_of(st.none(), st.integers(min_value=-(2**53), max_value=2**53))))
def test_integral_ids_come_back_as_the_same_integers(values: list[int | None]) -> None:
    as_floats = pd.Series([math.nan if v is None else float(v) for v in values], dtype=float)
    out = integral_as_int(as_floats)
    assert str(out.dtype) == "Int64"
    assert [None if pd.isna(v) else int(v) for v in out] == values


# Floats a count or an id can be: an integer below 2**53 is exact in a float column.
numbers = st.floats(min_value=-(2**53), max_value=2**53, allow_nan=False)


@given(st.lists(st.one_of(st.none(), numbers), min_size=1))
def test_a_fraction_keeps_the_column_float(values: list[float | None]) -> None:
    series = pd.Series([math.nan if v is None else v for v in values], dtype=float)
    out = integral_as_int(series)
    present = [v for v in values if v is not None]
    if any(v != int(v) for v in present):
        assert out.dtype == float
    else:
        assert str(out.dtype) == "Int64"
    assert out.isna().tolist() == series.isna().tolist()
    assert [None if pd.isna(v) else float(v) for v in out] == values


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
@given(st.lists(st.one_of(st.none(), numbers), max_size=3), st.sampled_from([2.0**63, 1e20, -1e19]))
@example([], 2.0**63)
def test_an_integral_value_too_large_for_int64_keeps_the_column_float(
    values: list[float | None], huge: float
) -> None:
    """issue 12, point 12: 1e20 made integral_as_int raise TypeError (cannot safely cast
    non-equivalent float64 to int64), an internal error in the analysis (was a strict xfail)."""
    series = pd.Series([math.nan if v is None else v for v in [*values, huge]], dtype=float)
    out = integral_as_int(series)
    assert out.tolist()[-1] == huge


@given(st.lists(st.text(alphabet="abcxyz", min_size=1, max_size=3), min_size=1))
def test_a_column_that_is_not_numbers_is_left_as_it_came(values: list[str]) -> None:
    series = pd.Series(values, dtype=object)
    assert integral_as_int(series).tolist() == values


# --- build_analysis ------------------------------------------------------------------------------

Row = dict[str, Any]
# Source details, target details, (source scan, target scan or None) pairs, the processed targets.
Case = tuple[list[Row], list[Row], list[tuple[int, int | None]], set[int]]

detail_names = st.sampled_from(["P", "Q", None])
detail_sections = st.sampled_from(["A", "B", "C", None])
detail_flags = st.sampled_from([True, False, None])
detail_pcts = st.sampled_from([None, 10.0, 20.0, 35.5])


@st.composite
def analyses(draw: st.DrawFn) -> Case:
    """Pairs of scans (some not copied, some targets not processed), each scan with 0-3 reports."""
    n = draw(st.integers(min_value=1, max_value=5))
    source: list[dict[str, Any]] = []
    target: list[dict[str, Any]] = []
    pairs: list[tuple[int, int | None]] = []
    processed: set[int] = set()
    report_ids = iter(draw(st.permutations(range(1, 100)))[:60])  # unique, in no particular order

    def scan_rows(scan: int) -> list[dict[str, Any]]:
        rows = []
        for _ in range(draw(st.integers(min_value=0, max_value=3))):
            row: dict[str, Any] = dict.fromkeys(DETAIL_COLUMNS)
            report = next(report_ids)
            row.update(
                # store_planogram_id: the report id again, so a row of the table tells which report it shows
                scan_id=scan,
                scan_status="done",
                report_id=report,
                store_planogram_id=report,
                planogram_name=draw(detail_names),
                section_name=draw(detail_sections),
                is_additional_section=draw(detail_flags),
                pre_pog_pct=draw(detail_pcts),
                map_by="m",
            )
            rows.append(row)
        if not rows:  # a scan without reports still has its one row in the details query
            row = dict.fromkeys(DETAIL_COLUMNS)
            row.update(scan_id=scan, scan_status="done")
            rows.append(row)
        return rows

    for i in range(1, n + 1):
        copied, done = draw(st.booleans()), draw(st.booleans())
        source += scan_rows(i)
        target_scan = 1000 + i if copied else None
        pairs.append((i, target_scan))
        if target_scan is not None:
            target += scan_rows(target_scan)
            if done:
                processed.add(target_scan)
    return source, target, pairs, processed


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(DETAIL_COLUMNS))


def reports_of(rows: list[dict[str, Any]], scan: int | None) -> list[dict[str, Any]]:
    return [r for r in rows if r["scan_id"] == scan and r["report_id"] is not None]


@settings(max_examples=40, deadline=None)  # each example builds a few frames: keep the suite quick
@given(analyses())
def test_the_table_has_each_report_once_in_pair_order_commented_by_the_row_rule(
    case: Case,
) -> None:
    source, target, pairs, processed = case
    out = build_analysis(frame(source), frame(target), pairs, processed)
    assert list(out.columns) == list(ANALYSIS_COLUMNS)
    by_id = {r["report_id"]: r for r in source + target if r["report_id"] is not None}

    def shown(report_id: object) -> Row | None:
        return None if pd.isna(report_id) else by_id[int(report_id)]  # type: ignore[call-overload]

    # Rows follow the pairs; a pair has max(its source reports, its readable target reports, 1) rows.
    order = {s: k for k, (s, _) in enumerate(pairs)}
    positions = [order[int(s)] for s in out["source_scan_id"]]
    assert positions == sorted(positions)
    per_pair = Counter(int(s) for s in out["source_scan_id"])
    for s, t in pairs:
        readable = reports_of(target, t) if t in processed else []
        assert per_pair[s] == max(len(reports_of(source, s)), len(readable), 1)

    # Every source report shows once, on its own pair's rows; so does every processed target's report.
    shown_source = out["source_store_planogram_id"].dropna().astype(int).tolist()
    assert sorted(shown_source) == sorted(r["report_id"] for r in source if r["report_id"] is not None)
    shown_target = out["target_store_planogram_id"].dropna().astype(int).tolist()
    assert sorted(shown_target) == sorted(r["report_id"] for t in processed for r in reports_of(target, t))

    for row in out.to_dict("records"):
        s, t = int(row["source_scan_id"]), row["target_scan_id"]
        s_report = shown(row["source_store_planogram_id"])
        t_report = shown(row["target_store_planogram_id"])
        assert s_report is None or s_report["scan_id"] == s
        assert t_report is None or t_report["scan_id"] == t
        comment = Comment.from_text(row["comment"])
        if pd.isna(t):
            expected = Comment.NOT_COPIED
        elif int(t) not in processed:
            expected = Comment.TARGET_NOT_PROCESSED  # and its unfinished data is not read:
            assert t_report is None
        elif s_report is None and t_report is None:
            expected = Comment.NO_REPORTS
        elif t_report is None:
            expected = Comment.NO_TARGET_REPORT
        elif s_report is None:
            expected = Comment.NO_SOURCE_REPORT
        else:  # the vectorised rules decide like the row rule, on the reports as the details gave them
            expected = comment_for(s_report, t_report)
        assert comment is expected

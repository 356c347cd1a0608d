"""Comparison rules: did the target map each scan like the source did (pure pandas)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from enum import Enum
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "ANALYSIS_COLUMNS",
    "COMPARED_COLUMNS",
    "DETAIL_COLUMNS",
    "Comment",
    "FilledText",
    "build_analysis",
    "comment_for",
    "integral_as_int",
    "NumbersKind",
    "numbers_kind",
    "combined_kind",
    "as_numbers",
]

DETAIL_COLUMNS: tuple[str, ...] = (
    "scan_id",
    "scan_status",
    "report_id",
    "realogram_id",
    "bays",
    "store_planogram_id",
    "planogram_id",
    "planogram_name",
    "section_id",
    "section_name",
    "is_additional_section",
    "pre_pog_pct",
    "post_pog_pct",
    "pre_osa_pct",
    "post_osa_pct",
    "ok",
    "wandering",
    "oos",
    "hole",
    "map_by",
)
COMPARED_COLUMNS: tuple[str, ...] = (
    "store_planogram_id",
    "planogram_name",
    "section_id",
    "section_name",
    "is_additional_section",
    "pre_pog_pct",
    "post_pog_pct",
    "pre_osa_pct",
    "post_osa_pct",
    "ok",
    "wandering",
    "oos",
    "hole",
)
ANALYSIS_COLUMNS: tuple[str, ...] = (
    "source_scan_id",
    "target_scan_id",
    *(f"{side}_{col}" for col in COMPARED_COLUMNS for side in ("source", "target")),
    "comment",
    "MAv2_Map_by",
)

_INT_COLUMNS = ("store_planogram_id", "section_id", "ok", "wandering", "oos", "hole")
_PCT_COLUMNS = ("pre_pog_pct", "post_pog_pct", "pre_osa_pct", "post_osa_pct")
# Stands in for a NULL section name in join keys, so NULL matches NULL like in rule 2.
_NULL_KEY = "\x00<null section>"


class FilledText(Enum):
    """A value a report writes as text, with the Excel fill of its cells: each member is
    `(text, fill)` (an RGB hex colour). The comments of an analysis and the classes of a compare."""

    text: str
    fill: str

    def __init__(self, text: str, fill: str) -> None:
        self.text = text
        self.fill = fill


class Comment(FilledText):
    """The verdict for one analysis row: its text (the CSV value) and its Excel fill colour.

    Rules 1-5 (`comment_for`) judge a source report against its target counterpart. The
    grey ones say why there is nothing to compare, instead of borrowing another row's data:
    SOURCE_NOT_FOUND and TARGET_NOT_FOUND (a pair names a scan id its instance does not have),
    NOT_COPIED (the source scan has no target scan), TARGET_NOT_PROCESSED (the target scan
    exists but its processing has not finished, so its reports are not final and are not read),
    TARGET_ERROR and TARGET_INTERRUPTED (the target's processing ended in `error` or
    `interrupted`: it has no reports, and waiting will not bring any; see `processing_failed`),
    NO_TARGET_REPORT (a source report the done target has no counterpart for, every one of them
    when the target is done without a report), NO_SOURCE_REPORT (a target report with no source
    counterpart: the MA mapped an extra section), NO_REPORTS (neither scan has any compliance
    report).
    """

    WRONG_POG = ("Wrong POG Name Mapping", "FFCCCC")
    DIFFERENT_SECTION = ("Same POG Name but Different Section", "FFE6CC")
    TARGET_ADDITIONAL = ("Target Has Additional Section (Source Does Not)", "FFFFCC")
    HIGHER_POG = ("Target Has Higher POG% Than Source", "CCE6FF")
    NO_ISSUES = ("No Issues", "CCFFCC")
    NOT_COPIED = ("Not Copied", "D9D9D9")
    SOURCE_NOT_FOUND = ("Source Scan Not Found", "D9D9D9")
    TARGET_NOT_FOUND = ("Target Scan Not Found", "D9D9D9")
    TARGET_NOT_PROCESSED = ("Target Not Processed", "D9D9D9")
    TARGET_ERROR = ("Target Processing Failed (error)", "D9D9D9")
    TARGET_INTERRUPTED = ("Target Processing Failed (interrupted)", "D9D9D9")
    NO_TARGET_REPORT = ("Target Report Missing", "D9D9D9")
    NO_SOURCE_REPORT = ("Source Report Missing", "D9D9D9")
    NO_REPORTS = ("No Report on Either Side", "D9D9D9")

    @classmethod
    def from_text(cls, text: str) -> Comment:
        """The comment whose text is `text` (ValueError when there is none)."""
        for comment in cls:
            if comment.text == text:
                return comment
        raise ValueError(f"unknown comment: {text!r}")

    @classmethod
    def processing_failed(cls, status: str) -> Comment:
        """The comment of a target whose processing ended in `status` (`error`, `interrupted`)."""
        for comment in (cls.TARGET_ERROR, cls.TARGET_INTERRUPTED):
            if comment.text == f"Target Processing Failed ({status})":
                return comment
        raise ValueError(f"{status!r} is not a failed processing status")


def _is_null(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _differ(a: object, b: object) -> bool:
    """Two NULLs are equal, NULL and a value differ (the legacy code said two NULLs differ)."""
    if _is_null(a) or _is_null(b):
        return _is_null(a) != _is_null(b)
    return bool(a != b)


def comment_for(source: Mapping[str, object], target: Mapping[str, object]) -> Comment:
    """Rules 1-5 for one source report against its target counterpart; first match wins.

    Both mappings use the details column names (`planogram_name`, `section_name`,
    `is_additional_section`, `pre_pog_pct`); a missing key counts as NULL.
    """
    if _differ(source.get("planogram_name"), target.get("planogram_name")):
        return Comment.WRONG_POG
    if _differ(source.get("section_name"), target.get("section_name")):
        return Comment.DIFFERENT_SECTION
    s_add, t_add = source.get("is_additional_section"), target.get("is_additional_section")
    if (not _is_null(t_add) and bool(t_add)) and (_is_null(s_add) or not bool(s_add)):
        return Comment.TARGET_ADDITIONAL
    s_pre, t_pre = source.get("pre_pog_pct"), target.get("pre_pog_pct")
    # A NULL POG % is unknown, not 0 %: it never makes the target "higher".
    if not _is_null(s_pre) and not _is_null(t_pre) and float(t_pre) > float(s_pre):  # type: ignore[arg-type]
        return Comment.HIGHER_POG
    return Comment.NO_ISSUES


# ---------------------------------------------------------------------------------------------
# Vectorised analysis

_COPIED, _NOT_COPIED, _NOT_PROCESSED, _FAILED = "copied", "not_copied", "not_processed", "failed"
_NO_SOURCE, _NO_TARGET = "source_not_found", "target_not_found"


def integral_as_int(series: pd.Series) -> pd.Series:
    """Nullable Int64 when every value is integral, so ids never print as `123.0`."""
    return as_numbers(series, numbers_kind(series))


# What `integral_as_int` makes of a column: left as it came (not numbers), integers, or numbers.
NumbersKind = Literal["as is", "integers", "numbers"]


def numbers_kind(series: pd.Series) -> NumbersKind:
    """What `integral_as_int` makes of `series`; of a column in parts, `combined_kind` of the
    parts' kinds."""
    numbers = pd.to_numeric(series, errors="coerce")
    if (numbers.isna() != series.isna()).any():
        return "as is"  # not numeric: leave it as it came
    present = numbers.dropna().to_numpy(dtype=float)
    # Int64 holds less than 2**63: a larger integral value (1e20) stays a float, as a fraction does.
    if not np.all(np.mod(present, 1) == 0) or np.any(np.abs(present) >= 2.0**63):
        return "numbers"
    return "integers"


def combined_kind(kinds: Iterable[NumbersKind]) -> NumbersKind:
    """The kind of a column whose parts have `kinds` (a column of no part is integers)."""
    seen = set(kinds)
    if "as is" in seen:
        return "as is"
    return "numbers" if "numbers" in seen else "integers"


def as_numbers(series: pd.Series, kind: NumbersKind) -> pd.Series:
    """`series` (or a part of a column) as `integral_as_int` makes a column of `kind`."""
    if kind == "as is":
        return series
    numbers = pd.to_numeric(series, errors="coerce")
    return numbers.astype("Int64") if kind == "integers" else numbers


def _normalise(details: pd.DataFrame) -> pd.DataFrame:
    """Uniform dtypes on both sides; NULLs stay NULL (NA), never 0."""
    out = details.copy()
    for col in DETAIL_COLUMNS:
        if col not in out.columns:
            out[col] = None
    out["scan_id"] = pd.to_numeric(out["scan_id"]).astype("Int64")
    for col in _INT_COLUMNS:
        out[col] = integral_as_int(out[col])
    for col in _PCT_COLUMNS:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    # Unexpected content stays as it is and is compared by truthiness, like `comment_for`.
    with contextlib.suppress(TypeError, ValueError):
        out["is_additional_section"] = out["is_additional_section"].astype("boolean")
    return out


def _pair_frame(
    pairs: Sequence[tuple[int, int | None]],
    processed_targets: Collection[int],
    unknown_sources: Collection[int],
    unknown_targets: Collection[int],
    failed_targets: Mapping[int, str],
) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "pair": np.arange(len(pairs), dtype=np.int64),
            "source_scan_id": pd.array([p[0] for p in pairs], dtype="Int64"),
            "target_scan_id": pd.array([p[1] for p in pairs], dtype="Int64"),
        }
    )
    processed = frame["target_scan_id"].isin(list(processed_targets)).to_numpy(dtype=bool)
    failed = frame["target_scan_id"].isin(list(failed_targets)).to_numpy(dtype=bool)
    frame["state"] = np.select(
        [
            frame["source_scan_id"].isin(list(unknown_sources)).to_numpy(dtype=bool),
            frame["target_scan_id"].isna().to_numpy(dtype=bool),
            frame["target_scan_id"].isin(list(unknown_targets)).to_numpy(dtype=bool),
            failed,
            processed,
        ],
        [_NO_SOURCE, _NOT_COPIED, _NO_TARGET, _FAILED, _COPIED],
        default=_NOT_PROCESSED,
    ).astype(object)
    # The comment of a failed pair names its status; ValueError for a status that is no failure.
    texts = {int(t): Comment.processing_failed(status).text for t, status in failed_targets.items()}
    frame["failure"] = frame["target_scan_id"].astype(object).map(texts)
    return frame


def _reports(details: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
    """The reports of the scans in `keys` (pair, scan_id), ranked per pair in report_id order.

    A scan's no-report placeholder row is dropped: a pair without reports is handled by the
    caller. Duplicate (scan, report) rows are dropped so a bad join upstream cannot multiply
    rows here.
    """
    reports = details[details["report_id"].notna()].drop_duplicates(["scan_id", "report_id"])
    ranked = keys.merge(reports, on="scan_id", how="inner").sort_values(["pair", "report_id"], kind="stable")
    ranked = ranked.reset_index(drop=True)
    ranked["rank"] = ranked.groupby("pair").cumcount()
    ranked["key"] = ranked["section_name"].astype(object).where(ranked["section_name"].notna(), _NULL_KEY)
    # The k-th report with a section name matches the k-th one with the same name.
    ranked["occurrence"] = ranked.groupby(["pair", "key"]).cumcount()
    return ranked


def _link(src: pd.DataFrame, tgt: pd.DataFrame) -> pd.DataFrame:
    """(pair, s_rank, t_rank) links: by section name first, the rest by order, then alone."""
    by_name = src[["pair", "key", "occurrence", "rank"]].merge(
        tgt[["pair", "key", "occurrence", "rank"]],
        on=["pair", "key", "occurrence"],
        suffixes=("_s", "_t"),
    )[["pair", "rank_s", "rank_t"]]

    def rest(side: pd.DataFrame, matched: pd.Series) -> pd.DataFrame:
        taken = pd.MultiIndex.from_arrays([by_name["pair"], matched])
        left = side.loc[
            ~pd.MultiIndex.from_arrays([side["pair"], side["rank"]]).isin(taken),
            ["pair", "rank"],
        ].copy()
        left["position"] = left.groupby("pair").cumcount()
        return left

    by_order = rest(src, by_name["rank_s"]).merge(
        rest(tgt, by_name["rank_t"]), on=["pair", "position"], how="outer", suffixes=("_s", "_t")
    )[["pair", "rank_s", "rank_t"]]
    links = pd.concat([by_name, by_order], ignore_index=True)
    links = links.rename(columns={"rank_s": "s_rank", "rank_t": "t_rank"})
    links["s_rank"] = links["s_rank"].astype("Int64")
    links["t_rank"] = links["t_rank"].astype("Int64")
    return links


def _side_columns(reports: pd.DataFrame, side: str) -> pd.DataFrame:
    cols = ["pair", "rank", *COMPARED_COLUMNS] + (["map_by"] if side == "target" else [])
    out = reports[cols].rename(columns={c: f"{side}_{c}" for c in COMPARED_COLUMNS})
    out = out.rename(columns={"rank": f"{side[0]}_rank", "map_by": "MAv2_Map_by"})
    out[f"{side[0]}_rank"] = out[f"{side[0]}_rank"].astype("Int64")
    return out


def _differs(a: pd.Series, b: pd.Series) -> np.ndarray:
    a_null = a.isna().to_numpy(dtype=bool)
    b_null = b.isna().to_numpy(dtype=bool)
    # Nulls are masked out first: `NA == x` is NA, which numpy cannot turn into a bool.
    a_vals = a.astype(object).where(~a_null, "").to_numpy()
    b_vals = b.astype(object).where(~b_null, "").to_numpy()
    equal: np.ndarray = np.asarray(a_vals == b_vals, dtype=bool)
    differ: np.ndarray = (a_null != b_null) | (~a_null & ~b_null & ~equal)
    return differ


def _truthy(series: pd.Series) -> np.ndarray:
    if isinstance(series.dtype, pd.BooleanDtype):
        truthy: np.ndarray = series.fillna(False).to_numpy(dtype=bool)
        return truthy
    return np.array([not _is_null(v) and bool(v) for v in series.astype(object)], dtype=bool)


def _comments(rows: pd.DataFrame) -> np.ndarray:
    """The same decisions as `comment_for` (plus the grey ones), for all rows at once."""
    state = rows["state"].to_numpy()
    has_s = rows["s_rank"].notna().to_numpy(dtype=bool)
    has_t = rows["t_rank"].notna().to_numpy(dtype=bool)
    t_add = _truthy(rows["target_is_additional_section"])
    s_add = _truthy(rows["source_is_additional_section"])
    s_pre = pd.to_numeric(rows["source_pre_pog_pct"], errors="coerce").to_numpy(dtype=float)
    t_pre = pd.to_numeric(rows["target_pre_pog_pct"], errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        higher = t_pre > s_pre  # NaN compares False: a NULL % is never higher
    conditions = [
        state == _NO_SOURCE,
        state == _NOT_COPIED,
        state == _NO_TARGET,
        state == _FAILED,
        state == _NOT_PROCESSED,
        ~has_s & ~has_t,
        ~has_t,
        ~has_s,
        _differs(rows["source_planogram_name"], rows["target_planogram_name"]),
        _differs(rows["source_section_name"], rows["target_section_name"]),
        t_add & ~s_add,
        higher,
    ]
    choices = [
        Comment.SOURCE_NOT_FOUND.text,
        Comment.NOT_COPIED.text,
        Comment.TARGET_NOT_FOUND.text,
        None,  # the failure's own comment (`failure`)
        Comment.TARGET_NOT_PROCESSED.text,
        Comment.NO_REPORTS.text,
        Comment.NO_TARGET_REPORT.text,
        Comment.NO_SOURCE_REPORT.text,
        Comment.WRONG_POG.text,
        Comment.DIFFERENT_SECTION.text,
        Comment.TARGET_ADDITIONAL.text,
        Comment.HIGHER_POG.text,
        Comment.NO_ISSUES.text,  # when no condition holds
    ]
    # Each row's choice by its number, then its text: the rows of a comment share one text
    # object (np.select of the texts gave each row a copy: 13 MB for a 100k-scan analysis).
    picked = np.select(conditions, list(range(len(conditions))), default=len(conditions))
    comments: np.ndarray = np.array(choices, dtype=object)[picked]
    failed = picked == choices.index(None)
    comments[failed] = rows["failure"].to_numpy(dtype=object)[failed]
    return comments


def build_analysis(
    source_details: pd.DataFrame,
    target_details: pd.DataFrame,
    pairs: Sequence[tuple[int, int | None]],
    processed_targets: Collection[int],
    unknown_sources: Collection[int] = (),
    unknown_targets: Collection[int] = (),
    *,
    failed_targets: Mapping[int, str] | None = None,
) -> pd.DataFrame:
    """One row per compared report, in `ANALYSIS_COLUMNS` order, commented by the rules.

    `processed_targets` are the done target scans, whose reports are final (maybe none);
    `failed_targets` maps the target scans whose processing ended in `error` or `interrupted` to
    that status. A target in neither is still being processed.

    Inside a pair, source reports match target reports by exact section name first, then
    the remaining ones by report_id order. Rows follow `pairs`, then source report order;
    target reports with no source counterpart come last in their pair. Only a pair's own
    scans are ever read: a not-copied, not-processed or failed pair gets its source rows with
    empty target columns, a pair with no report on either side gets one row.
    """
    plan = _pair_frame(pairs, processed_targets, unknown_sources, unknown_targets, failed_targets or {})
    source = _normalise(source_details)
    target = _normalise(target_details)

    src_keys = plan[["pair", "source_scan_id"]].rename(columns={"source_scan_id": "scan_id"})
    src = _reports(source, src_keys)
    # Only processed targets are read: an unprocessed scan's reports are not final.
    tgt_keys = plan.loc[plan["state"] == _COPIED, ["pair", "target_scan_id"]]
    tgt = _reports(target, tgt_keys.rename(columns={"target_scan_id": "scan_id"}))

    links = _link(src, tgt)
    alone = plan.loc[~plan["pair"].isin(links["pair"]), ["pair"]]
    links = pd.concat([links, alone], ignore_index=True)
    links["s_rank"] = links["s_rank"].astype("Int64")
    links["t_rank"] = links["t_rank"].astype("Int64")

    rows = (
        links.merge(plan, on="pair", how="left")
        .merge(_side_columns(src, "source"), on=["pair", "s_rank"], how="left")
        .merge(_side_columns(tgt, "target"), on=["pair", "t_rank"], how="left")
    )
    # NA ranks last: a pair's unmatched target reports follow its source reports.
    rows = rows.sort_values(["pair", "s_rank", "t_rank"], na_position="last", kind="stable")
    rows = rows.reset_index(drop=True)
    rows["comment"] = _comments(rows)
    return rows[list(ANALYSIS_COLUMNS)]

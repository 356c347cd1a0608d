"""Two analyses of the same source scans, row by row: what improved, what regressed (pure pandas).

A row of an analysis is one source report (a source scan's section) against its target
counterpart. Rows of the two analyses are matched by their source scan and section: the source
section's name, or for a target section the source has not ("Source Report Missing") the
target section's name; the n-th row with the same key on one side matches the n-th on the other.

Which side is better is decided by `CLASS_RULE` (the README says the same): each comment has a
rank, best first, and a row whose candidate comment ranks better than its baseline comment
improved, worse regressed. Comments of the same rank are told apart by the target's POG %
(`target_pre_pog_pct`): higher is better. A comment that judged nothing (the scan was not
copied, not processed, not found, has no report on either side) has no rank: such a row is
unchanged when both sides say the same, else not comparable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scanjobs.report.rules import Comment, FilledText

__all__ = [
    "CLASS_RULE",
    "COMPARE_COLUMNS",
    "CompareClass",
    "NONE",
    "RANKING",
    "build_compare",
    "class_counts",
    "read_analysis",
    "transition_counts",
]

CLASS_RULE = (
    "per source scan and section: a candidate comment ranked better than the baseline's is "
    "improved, worse is regressed; the same rank is decided by the target's POG % (higher is "
    "better); a comment that judged nothing (not copied, not processed, not found, no report on "
    "either side) makes the row not comparable unless both sides say the same; a row on one side "
    "only is only_in_baseline or only_in_candidate"
)

# Best first: the reverse of the order in which the analysis rules are tried (the first match
# is the worst finding), then what the target's MA failed to make at all.
RANKING: tuple[tuple[Comment, ...], ...] = (
    (Comment.NO_ISSUES,),
    (Comment.HIGHER_POG,),
    (Comment.TARGET_ADDITIONAL,),
    (Comment.NO_SOURCE_REPORT,),
    (Comment.DIFFERENT_SECTION,),
    (Comment.WRONG_POG,),
    (Comment.NO_TARGET_REPORT,),
    (Comment.TARGET_ERROR, Comment.TARGET_INTERRUPTED),
)
_RANK = {comment.text: rank for rank, comments in enumerate(RANKING) for comment in comments}

# What an analysis CSV must hold for a compare (ANALYSIS_COLUMNS has more).
_READ = {
    "source_scan_id": "Int64",
    "target_scan_id": "Int64",
    "source_section_name": "string",
    "target_section_name": "string",
    "target_planogram_name": "string",
    "target_pre_pog_pct": "float64",
    "comment": "string",
}
_SIDES = ("baseline", "candidate")
_NULL = "\x00<null section>"  # a NULL section name in a key: NULL matches NULL
NONE = "(none)"  # the comment of a side that lacks the row, in transitions

COMPARE_COLUMNS: tuple[str, ...] = (
    "source_scan_id",
    "source_section_name",
    "baseline_target_scan_id",
    "candidate_target_scan_id",
    "baseline_comment",
    "candidate_comment",
    "baseline_planogram_name",
    "candidate_planogram_name",
    "pog_changed",
    "baseline_section_name",
    "candidate_section_name",
    "section_changed",
    "baseline_pog_pct",
    "candidate_pog_pct",
    "pog_pct_difference",
    "class",
)


class CompareClass(FilledText):
    """The class of a compare row (its text is the CSV value and the `compare.gate` key) and
    its Excel fill colour."""

    IMPROVED = ("improved", "CCFFCC")
    REGRESSED = ("regressed", "FFCCCC")
    UNCHANGED = ("unchanged", "F2F2F2")
    ONLY_IN_BASELINE = ("only_in_baseline", "FFFFCC")
    ONLY_IN_CANDIDATE = ("only_in_candidate", "FFE6CC")
    NOT_COMPARABLE = ("not_comparable", "D9D9D9")


def read_analysis(path: Path) -> pd.DataFrame:
    """The columns a compare needs of an analysis CSV (`analysis_with_comments.csv`); an empty
    cell is NULL, any other text is kept as it is (a section called `NA` stays `NA`).

    ValueError names the columns the file lacks."""
    header = pd.read_csv(path, nrows=0).columns
    missing = [c for c in _READ if c not in header]
    if missing:
        raise ValueError(f"{path} is not an analysis: it lacks {', '.join(missing)}")
    frame = pd.read_csv(
        path,
        usecols=list(_READ),
        dtype={c: ("string" if t == "string" else "float64") for c, t in _READ.items()},
        keep_default_na=False,
        na_values=[""],
    )
    for col in ("source_scan_id", "target_scan_id"):
        frame[col] = frame[col].astype("Int64")
    return frame[list(_READ)]


def _keyed(analysis: pd.DataFrame) -> pd.DataFrame:
    """The rows with their key: (scan, whose section, section, occurrence)."""
    out = analysis.reset_index(drop=True).copy()
    target_only = (out["comment"] == Comment.NO_SOURCE_REPORT.text).fillna(False).to_numpy(dtype=bool)
    section = out["source_section_name"].astype(object).where(~target_only, out["target_section_name"])
    out["whose"] = np.where(target_only, "target", "source")
    out["key"] = section.where(section.notna(), _NULL)
    out["occurrence"] = out.groupby(["source_scan_id", "whose", "key"], dropna=False).cumcount()
    out["position"] = np.arange(len(out))
    return out


def _differ(a: pd.Series, b: pd.Series) -> pd.Series:
    """Whether two text columns differ (NULL equals NULL), NA where a side is missing."""
    a_obj, b_obj = a.astype(object), b.astype(object)
    same = (a_obj == b_obj) | (a.isna() & b.isna())
    return (~same.astype(bool)).astype("boolean")


def _classes(rows: pd.DataFrame, in_b: np.ndarray, in_c: np.ndarray) -> np.ndarray:
    b_rank = rows["baseline_comment"].astype(object).map(_RANK).to_numpy(dtype=float)
    c_rank = rows["candidate_comment"].astype(object).map(_RANK).to_numpy(dtype=float)
    b_pct = rows["baseline_pog_pct"].to_numpy(dtype=float)
    c_pct = rows["candidate_pog_pct"].to_numpy(dtype=float)
    same_text = (
        rows["baseline_comment"].astype(object) == rows["candidate_comment"].astype(object)
    ).to_numpy(dtype=bool)
    unranked = np.isnan(b_rank) | np.isnan(c_rank)
    with np.errstate(invalid="ignore"):  # NaN compares False: an unknown % decides nothing
        conditions = [
            ~in_c,
            ~in_b,
            unranked & same_text,
            unranked,
            c_rank < b_rank,
            c_rank > b_rank,
            c_pct > b_pct,
            c_pct < b_pct,
        ]
    choices = [
        CompareClass.ONLY_IN_BASELINE.text,
        CompareClass.ONLY_IN_CANDIDATE.text,
        CompareClass.UNCHANGED.text,
        CompareClass.NOT_COMPARABLE.text,
        CompareClass.IMPROVED.text,
        CompareClass.REGRESSED.text,
        CompareClass.IMPROVED.text,
        CompareClass.REGRESSED.text,
    ]
    classes: np.ndarray = np.select(conditions, choices, default=CompareClass.UNCHANGED.text).astype(object)
    return classes


def build_compare(baseline: pd.DataFrame, candidate: pd.DataFrame) -> pd.DataFrame:
    """One row per source scan and section of either analysis, in `COMPARE_COLUMNS` order,
    classified by `CLASS_RULE`. Rows follow the baseline's order; a scan's rows the baseline
    lacks follow its own, and scans only the candidate has come last."""
    keys = ["source_scan_id", "whose", "key", "occurrence"]
    sides = []
    for side, frame in zip(_SIDES, (baseline, candidate), strict=True):
        keyed = _keyed(frame)
        renamed = keyed.rename(
            columns={
                "source_section_name": f"{side}_source_section_name",
                "target_scan_id": f"{side}_target_scan_id",
                "target_section_name": f"{side}_section_name",
                "target_planogram_name": f"{side}_planogram_name",
                "target_pre_pog_pct": f"{side}_pog_pct",
                "comment": f"{side}_comment",
                "position": f"{side}_position",
            }
        )
        renamed[f"in_{side}"] = True
        sides.append(renamed)
    rows = sides[0].merge(sides[1], on=keys, how="outer", sort=False)
    in_b = rows["in_baseline"].eq(True).to_numpy(dtype=bool)
    in_c = rows["in_candidate"].eq(True).to_numpy(dtype=bool)
    rows["source_section_name"] = rows["baseline_source_section_name"].where(
        in_b, rows["candidate_source_section_name"]
    )
    # the baseline's order; a row only the candidate has goes after its scan's baseline rows
    offset = len(baseline)
    order = rows["baseline_position"].where(in_b, rows["candidate_position"] + offset)
    rows["order"] = order
    rows["scan_order"] = rows.groupby("source_scan_id", dropna=False)["order"].transform("min")
    rows = rows.sort_values(["scan_order", "order"], kind="stable").reset_index(drop=True)
    in_b = rows["in_baseline"].eq(True).to_numpy(dtype=bool)
    in_c = rows["in_candidate"].eq(True).to_numpy(dtype=bool)
    both = pd.Series(in_b & in_c)
    rows["pog_changed"] = _differ(rows["baseline_planogram_name"], rows["candidate_planogram_name"]).where(
        both
    )
    rows["section_changed"] = _differ(rows["baseline_section_name"], rows["candidate_section_name"]).where(
        both
    )
    rows["pog_pct_difference"] = (rows["candidate_pog_pct"] - rows["baseline_pog_pct"]).round(2)
    rows["class"] = _classes(rows, in_b, in_c)
    for col in ("baseline_target_scan_id", "candidate_target_scan_id", "source_scan_id"):
        rows[col] = rows[col].astype("Int64")
    return rows[list(COMPARE_COLUMNS)]


def class_counts(compare: pd.DataFrame) -> dict[str, int]:
    """Rows per class, every class listed (zero included), in `CompareClass` order."""
    counts = compare["class"].value_counts()
    return {c.text: int(counts.get(c.text, 0)) for c in CompareClass}


def transition_counts(compare: pd.DataFrame) -> list[tuple[str, str, int]]:
    """(baseline comment, candidate comment, rows) for every transition that occurs, the most
    frequent first; a side without the row says "(none)"."""
    pairs = compare[["baseline_comment", "candidate_comment"]].astype(object).fillna(NONE)
    counted = pairs.value_counts(sort=False).reset_index(name="rows")
    counted = counted.sort_values(
        ["rows", "baseline_comment", "candidate_comment"], ascending=[False, True, True], kind="stable"
    )
    return [(str(b), str(c), int(n)) for b, c, n in counted.itertuples(index=False, name=None)]

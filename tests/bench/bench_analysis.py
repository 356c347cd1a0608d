"""Benchmark: build_analysis and the report writers on synthetic details for N pairs."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

# Run as a plain script from a checkout: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scanjobs.report import build_analysis, summary_counts, write_csv, write_excel  # noqa: E402
from scanjobs.report.rules import DETAIL_COLUMNS  # noqa: E402

POGS = [f"POG {i}" for i in range(40)]
SECTIONS = [f"Section {i}" for i in range(12)]


def _side(
    rng: np.random.Generator,
    scan_ids: np.ndarray,
    per_scan: np.ndarray,
    first_report: int,
    twin: pd.DataFrame | None,
) -> pd.DataFrame:
    """Details for `scan_ids` with `per_scan` reports each (0 gives the no-report row).

    With `twin` (the source side), a target report mostly copies the names of the source
    report at the same position of the same pair, so the rules see a realistic mix:
    mostly "No Issues", some wrong POG / section / additional / higher %.
    """
    rows_per_scan = np.maximum(per_scan, 1)
    n = int(rows_per_scan.sum())
    has_report = np.repeat(per_scan > 0, rows_per_scan)
    frame = pd.DataFrame({col: pd.Series([None] * n, dtype=object) for col in DETAIL_COLUMNS})
    frame["scan_id"] = np.repeat(scan_ids, rows_per_scan)
    frame["pair"] = np.repeat(np.arange(len(scan_ids)), rows_per_scan)
    frame["position"] = frame.groupby("pair").cumcount()
    frame["scan_status"] = "done"
    frame["report_id"] = pd.array(np.arange(first_report, first_report + n), dtype="Int64")
    frame["planogram_name"] = rng.choice(POGS, size=n)
    frame["section_name"] = rng.choice(SECTIONS, size=n)
    if twin is not None:
        same = frame[["pair", "position"]].merge(
            twin[["pair", "position", "planogram_name", "section_name"]],
            on=["pair", "position"],
            how="left",
        )
        for col, keep_rate in (("planogram_name", 0.9), ("section_name", 0.93)):
            keep = same[col].notna().to_numpy() & (rng.random(n) < keep_rate)
            frame[col] = np.where(keep, same[col].to_numpy(), frame[col].to_numpy())
    frame["store_planogram_id"] = rng.integers(1, 5000, size=n)
    frame["section_id"] = rng.integers(1, 50000, size=n)
    frame["is_additional_section"] = rng.random(n) < 0.05
    for col in ("pre_pog_pct", "post_pog_pct", "pre_osa_pct", "post_osa_pct"):
        values = np.round(rng.uniform(0, 100, size=n), 1)
        frame[col] = np.where(rng.random(n) < 0.05, np.nan, values)  # some NULL %
    for col in ("ok", "wandering", "oos", "hole"):
        frame[col] = rng.integers(0, 60, size=n)
    frame["map_by"] = rng.choice(["majority", "category", "section"], size=n)
    report_cols = [c for c in DETAIL_COLUMNS if c not in ("scan_id", "scan_status")]
    frame[report_cols] = frame[report_cols].astype(object)
    frame.loc[~has_report, report_cols] = None
    return frame


def synthetic(pairs: int, seed: int = 20240601) -> tuple[pd.DataFrame, pd.DataFrame, list, set]:
    """Source/target details, pairs (2 % not copied) and processed targets (97 %)."""
    rng = np.random.default_rng(seed)
    source_ids = np.arange(1_000_000, 1_000_000 + pairs)
    target_ids = np.arange(5_000_000, 5_000_000 + pairs)
    # ~1.5 reports per scan, 3 % of scans without any; the target mostly keeps the count.
    src_counts = rng.choice([0, 1, 2], size=pairs, p=[0.03, 0.47, 0.50])
    changed = rng.random(pairs) < 0.05
    tgt_counts = np.where(changed, rng.choice([0, 1, 2, 3], size=pairs), src_counts)
    source = _side(rng, source_ids, src_counts, 1, None)
    target = _side(rng, target_ids, tgt_counts, 10_000_000, source)
    columns = list(DETAIL_COLUMNS)
    source, target = source[columns], target[columns]
    copied = rng.random(pairs) >= 0.02
    pair_list = [
        (int(s), int(t) if c else None) for s, t, c in zip(source_ids, target_ids, copied, strict=True)
    ]
    done = rng.random(pairs) < 0.97
    processed = {int(t) for t, c, d in zip(target_ids, copied, done, strict=True) if c and d}
    return source, target, pair_list, processed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=10_000)
    args = parser.parse_args()

    source, target, pairs, processed = synthetic(args.pairs)
    print(f"{args.pairs} pairs: {len(source)} source rows, {len(target)} target rows")
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        start = time.perf_counter()
        analysis = build_analysis(source, target, pairs, processed)
        timings["build_analysis"] = time.perf_counter() - start

        start = time.perf_counter()
        write_csv(source, out / "source_scandetails.csv")
        write_csv(target, out / "target_scandetails.csv")
        write_csv(analysis, out / "analysis_with_comments.csv")
        timings["csv (3 files)"] = time.perf_counter() - start

        start = time.perf_counter()
        write_excel(analysis, out / "analysis_with_comments.xlsx")
        timings["excel"] = time.perf_counter() - start
        size = (out / "analysis_with_comments.xlsx").stat().st_size

    print(f"{len(analysis)} analysis rows, xlsx {size / 1e6:.1f} MB")
    for name, seconds in timings.items():
        print(f"  {name:<16} {seconds:7.2f} s")
    print(f"  {'total':<16} {sum(timings.values()):7.2f} s")
    for text, count in summary_counts(analysis).items():
        print(f"    {count:6d}  {text}")


if __name__ == "__main__":
    main()

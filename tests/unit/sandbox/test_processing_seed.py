"""The simulated MA's random sources are pure functions of the seed and the scan (issue 12, point 23)."""

from __future__ import annotations

import datetime as dt

from scanjobs.sandbox.processing import day_rng, scan_rng


def test_a_scans_random_source_depends_on_its_content_not_on_when_it_comes() -> None:
    """issue 12, point 23: a shared generator drawn in processing order made one seed map scans
    differently from run to run; each scan now draws from its own."""
    first = scan_rng(42, "target", 5, ["b" * 64, "a" * 64], scan_id=901).random()
    scan_rng(42, "target", 5, ["c" * 64], scan_id=902).random()  # another scan in between
    assert scan_rng(42, "target", 5, ["a" * 64, "b" * 64], scan_id=777).random() == first
    assert scan_rng(43, "target", 5, ["a" * 64, "b" * 64], scan_id=901).random() != first
    assert scan_rng(42, "target", 6, ["a" * 64, "b" * 64], scan_id=901).random() != first
    # without files, the id is all a scan has
    assert scan_rng(42, "target", 5, [], 1).random() != scan_rng(42, "target", 5, [], 2).random()


def test_a_days_compliance_row_is_the_same_whoever_writes_it() -> None:
    """issue 12, point 23: the first scan of a day no longer decides that day's row."""
    day = dt.date(2024, 3, 1)
    assert day_rng(1, "target", 5, 7, day).random() == day_rng(1, "target", 5, 7, day).random()
    assert day_rng(1, "target", 5, 7, day).random() != day_rng(1, "target", 5, 7, day.replace(day=2)).random()

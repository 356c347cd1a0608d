"""The quality gate without I/O: counts and shares of scans, by how much a limit is exceeded."""

from __future__ import annotations

import pandas as pd

from scanjobs.jobfile.model import Gate, GateLimit
from scanjobs.report.figures import scans_per_value
from scanjobs.report.gate import judge


def test_a_scan_counts_once_per_subject() -> None:
    frame = pd.DataFrame(
        {"source_scan_id": [1, 1, 2, 3], "comment": ["Wrong POG Name Mapping"] * 2 + ["No Issues"] * 2}
    )
    assert scans_per_value(frame, "comment") == ({"Wrong POG Name Mapping": 1, "No Issues": 2}, 3)


def test_counts_and_shares() -> None:
    gate = Gate((GateLimit("a", count=1), GateLimit("b", share=0.05), GateLimit("c", share=0.5)))
    verdict = judge(gate, {"a": 2, "b": 4, "c": 15}, 30, "analysis")
    assert verdict.breached and verdict.verdict == "breached"
    a, b, c = verdict.limits
    assert (a.breached, a.allowed, a.actual()) == (True, 1, "2")
    assert (b.breached, b.allowed, b.actual()) == (True, 1, "13.3%")
    assert (c.breached, c.allowed) == (False, 15)  # exactly at the limit passes
    assert b.describe() == "b: 4 of 30 scans (13.3%), limit 5%: 3 scan(s) over, 8.3 points"
    assert verdict.describe().startswith("gate breached (analysis): a: 2 of 30 scans")
    assert verdict.as_event()["limits"][1] == {
        "subject": "b",
        "limit": "5%",
        "actual": "13.3%",
        "scans": 4,
        "total": 30,
        "verdict": "breached",
        "excess_scans": 3,
    }


def test_a_subject_the_report_lacks_has_no_scans() -> None:
    verdict = judge(Gate((GateLimit("regressed", count=0),)), {}, 0, "compare")
    assert not verdict.breached
    assert verdict.describe() == "gate passed (compare): regressed: 0 of 0 scans (0.0%), within 0"

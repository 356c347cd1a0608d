"""The sandbox's request statistics: arrivals per whole second, and what a reset clears."""

from __future__ import annotations

import json

from scanjobs.sandbox.faults import Stats


def test_arrivals_are_counted_per_whole_second() -> None:
    stats = Stats()
    for now in (100.2, 100.9, 101.0, 103.5, 100.99):
        stats.arrived(now)
    shown = json.loads(json.dumps(stats.as_dict()))  # as the control API sends it
    assert shown["first_request_at"] == 100.2
    assert shown["per_second"] == {"100": 3, "101": 1, "103": 1}
    assert shown["max_per_second"] == 3


def test_reset_forgets_the_arrivals() -> None:
    stats = Stats()
    stats.arrived(5.5)
    stats.reset()
    assert stats.as_dict()["first_request_at"] is None
    assert stats.as_dict()["per_second"] == {} and stats.as_dict()["max_per_second"] == 0
    stats.arrived(7.25)
    assert stats.as_dict()["first_request_at"] == 7.25

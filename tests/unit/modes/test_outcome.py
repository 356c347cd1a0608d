"""The outcome layer: the failure window."""

from __future__ import annotations

from scanjobs.modes.outcome import FailureWindow


def test_failure_window() -> None:
    window = FailureWindow(4, 0.5)
    for failed in (True, True, True):
        window.record(failed)
    assert not window.exceeded()  # the window is not full yet
    window.record(False)
    assert window.exceeded()  # 3 of 4 > 0.5
    window.record(False)
    assert not window.exceeded()  # 2 of 4 is not more than half
    assert not FailureWindow(1, 1.0).exceeded()

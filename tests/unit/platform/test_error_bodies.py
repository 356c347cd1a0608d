"""The platform's error bodies, shown as their message."""

from __future__ import annotations

from scanjobs.platform.session import _render_json


def test_the_platforms_error_key_is_shown_as_the_message() -> None:
    """A 424 answers {"error": ...} (the platform's client reads `error`): no "error:" label."""
    assert _render_json({"error": "Another request is already processing"}) == (
        "Another request is already processing"
    )
    assert _render_json({"detail": "Not found."}) == "Not found."
    assert _render_json({"files": ["Invalid pk"]}) == "files: Invalid pk"

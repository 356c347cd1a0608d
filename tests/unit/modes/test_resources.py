"""Scan id lists read from files."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanjobs.errors import JobError
from scanjobs.modes.resources import read_id_column


def test_read_id_column(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("store,Scan_ID\n8,12\n8,13\n8,12\n")
    assert read_id_column(path) == [12, 13]
    path.write_text("12\n13\n")
    assert read_id_column(path) == [12, 13]
    path.write_text("scan_id\n12\nabc\n")
    with pytest.raises(JobError, match="line 3"):
        read_id_column(path)
    path.write_text("")
    with pytest.raises(JobError, match="empty"):
        read_id_column(path)

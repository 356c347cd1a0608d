"""Pairs files of analyze jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanjobs.errors import JobError
from scanjobs.modes.analyze.run import read_pairs_csv


def test_read_pairs_csv(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("Source_Scan_ID,Target_Scan_ID\n1,10\n2,\n")
    assert read_pairs_csv(path) == [(1, 10), (2, None)]
    path.write_text("a,b\n1,2\n")
    with pytest.raises(JobError, match="Source_Scan_ID"):
        read_pairs_csv(path)

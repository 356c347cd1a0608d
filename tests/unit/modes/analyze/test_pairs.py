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


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("Source_Scan_ID,Target_Scan_ID\n1,10\n2,\xb2\n".encode(), "line 3"),  # a superscript two
        (b"Source_Scan_ID,Target_Scan_ID\n1,10\n9223372036854775808,1\n", "line 3"),  # bigint + 1
        (b"Source_Scan_ID,Target_Scan_ID\n1,10\n2,\xff\n", "line 3 is not UTF-8"),
    ],
)
def test_hostile_pairs_are_refused_with_their_line(tmp_path: Path, content: bytes, message: str) -> None:
    """Issue 12, point 12 (a sibling): a pairs CSV is refused as a job error, never an exit 3."""
    path = tmp_path / "pairs.csv"
    path.write_bytes(content)
    with pytest.raises(JobError, match=message):
        read_pairs_csv(path)

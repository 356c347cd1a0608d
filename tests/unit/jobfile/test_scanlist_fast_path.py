"""A one-column scan list without quotes is read line by line: the same records as the csv
module reads (the fast path of `read_id_column`, for lists of 100k ids)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from scanjobs.jobfile import scanlist

CELLS = st.one_of(
    st.integers(min_value=0, max_value=2**64).map(str),
    st.sampled_from(["scan_id", "", "  ", " 12 ", "x", "１２", "00", "\t7"]),
)


@given(st.lists(CELLS, max_size=12), st.sampled_from(["\n", "\r\n", "\r"]), st.booleans())
def test_the_fast_path_reads_the_records_the_csv_module_reads(
    cells: list[str], end: str, final_end: bool
) -> None:
    text = end.join(cells) + (end if final_end else "")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scans.csv"
        path.write_bytes(text.encode())
        by_csv = scanlist._rows(path, "scan list")
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        by_lines = [(n, [line]) for n, line in enumerate(lines, start=1) if line.strip()]
        assert by_lines == by_csv

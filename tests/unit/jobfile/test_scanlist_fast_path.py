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


ID_CELLS = st.one_of(
    st.integers(min_value=-3, max_value=2**64).map(str),
    st.integers(min_value=0, max_value=2**63).map(lambda n: f" 000{n}\t"),
    st.sampled_from(["", "  ", "x", "１２", "²", "0" * 30 + "7", "0" * 5000 + "1", "1e3", "+5"]),
)


@given(st.lists(ID_CELLS, max_size=12))
def test_the_whole_list_check_agrees_with_scan_id_cell_by_cell(cells: list[str]) -> None:
    one_by_one = [scanlist.scan_id(cell) for cell in cells]
    whole = scanlist.scan_ids(cells)
    if whole is not None:  # the fast check may decline a list scan_id reads (leading zeros)
        assert whole == one_by_one
    else:
        assert None in one_by_one or any(len(c.strip()) > 19 for c in cells)


def test_leading_zeros_beyond_int_s_digit_limit_are_read_not_crashed_on(tmp_path: Path) -> None:
    # int() refuses a text of more than 4300 digits, leading zeros included
    path = tmp_path / "scans.csv"
    path.write_text("scan_id\n" + "0" * 5000 + "1\n2\n")
    assert scanlist.read_id_column(path) == [1, 2]

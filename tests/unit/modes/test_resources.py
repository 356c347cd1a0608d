"""Scan id lists read from files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scanjobs.errors import JobError, StateError
from scanjobs.events import EventBus
from scanjobs.jobfile.dates import DateSpec
from scanjobs.jobfile.model import ScanQuery, ScanSelection
from scanjobs.modes.resources import read_id_column, selection_day
from scanjobs.state import SELECTION_DAY, StateStore


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


def test_a_scan_list_that_is_not_utf8_is_refused_with_its_line(tmp_path: Path) -> None:
    """issue 12, point 12: a Latin-1 scan list was an internal error (UnicodeDecodeError), exit 3."""
    path = tmp_path / "ids.csv"
    path.write_bytes("scan_id,store\n12,Caf\u00e9\n\n13,Cr\u00e8me\n".encode("latin-1"))
    with pytest.raises(JobError, match=r"ids\.csv: line 2 is not UTF-8"):
        read_id_column(path)


@pytest.mark.parametrize(
    "cell",
    ["9223372036854775808", "99999999999999999999999", "9" * 5000, "\u00b2", "\u0661\u0662", "1\u00b2"],
    ids=["2**63", "beyond", "5000-digits", "superscript", "arabic-indic", "digit-superscript"],
)
def test_a_cell_that_is_no_bigint_scan_id_is_refused_with_its_line(tmp_path: Path, cell: str) -> None:
    """issue 12, point 12: an id beyond PostgreSQL's bigint passed, then failed the run; '²' passed
    str.isdigit and made int() raise (exit 3); '١٢' was read as 12."""
    path = tmp_path / "ids.csv"
    path.write_text(f"scan_id\n12\n\n{cell}\n", encoding="utf-8")
    with pytest.raises(JobError, match="line 4") as info:
        read_id_column(path)
    assert len(str(info.value)) < 400  # a huge cell is not shown whole
    path.write_text("scan_id\n12\n9223372036854775807\n", encoding="utf-8")
    assert read_id_column(path) == [12, 2**63 - 1]


def test_a_bom_and_lone_carriage_returns_are_read(tmp_path: Path) -> None:
    """issue 12, point 12: what spreadsheets write (a BOM, old Mac line ends) reads as meant."""
    path = tmp_path / "ids.csv"
    path.write_bytes(b"\xef\xbb\xbfScan_ID\r12\r13\r")
    assert read_id_column(path) == [12, 13]


def test_a_scan_list_that_is_not_csv_is_refused_with_its_line(tmp_path: Path) -> None:
    """issue 12, point 12: a field past the csv module's limit raised csv.Error, exit 3."""
    path = tmp_path / "ids.csv"
    path.write_text("scan_id\n12\n" + "1" * 200_000 + "\n", encoding="utf-8")
    with pytest.raises(JobError, match="line 3"):
        read_id_column(path)


def test_a_scan_list_that_is_no_regular_file_is_refused(tmp_path: Path) -> None:
    """issue 12, point 12: a folder, or a FIFO that would block the read forever, is not a list."""
    with pytest.raises(JobError, match="not a file"):
        read_id_column(tmp_path)
    fifo = tmp_path / "ids.fifo"
    os.mkfifo(fifo)
    with pytest.raises(JobError, match="not a file"):
        read_id_column(fifo)
    with pytest.raises(JobError, match="cannot read"):
        read_id_column(tmp_path / "missing.csv")


def test_a_recorded_selection_day_that_is_not_a_date_is_a_state_error(tmp_path: Path) -> None:
    """The day a query's relative dates count from is kept in the state; one that is not a date
    (the file edited by hand) stops the run with exit 4 and the way out, not a traceback."""
    selection = ScanSelection("query", query=ScanQuery((1,), date_from=DateSpec.parse("-7d")))
    store = StateStore.open(tmp_path / "j.state.sqlite", fingerprint="f")
    try:
        store.set_meta(SELECTION_DAY, "2026-02-30")
        with pytest.raises(StateError, match="not a date") as refused:
            selection_day(selection, store, EventBus())
        assert "--restart" in (refused.value.hint or "")
    finally:
        store.close()

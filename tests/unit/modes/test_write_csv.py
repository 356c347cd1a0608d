"""`resources.write_csv` (scan_mapping.csv, failures.csv, manifest.csv): platform text is data,
our numbers stay numbers, and a file whose content would not change is not written again."""

from __future__ import annotations

import csv
import re
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from scanjobs.modes.resources import write_csv

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SIGNED_NUMBER = re.compile(r"[+-][0-9]+(\.[0-9]+)?")  # only a number: no formula, left as it is


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_text_that_starts_a_formula_is_quoted_numbers_are_not(tmp_path: Path) -> None:
    """issue 12, point 10: an error message or a section name from the platform cannot become a
    formula in a spreadsheet (OWASP: a leading single quote); ids and negative numbers of ours,
    and text that is only a number, are left as they are."""
    path = tmp_path / "failures.csv"
    texts = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "plain", "-5", "+2.5"]
    write_csv(path, ["scan_id", "delta", "ratio", "error"], [[12, -3, -0.5, t] for t in texts])
    rows = read_rows(path)
    assert rows[0] == ["scan_id", "delta", "ratio", "error"]
    assert [r[:3] for r in rows[1:]] == [["12", "-3", "-0.5"]] * len(texts)
    assert [r[3] for r in rows[1:]] == [
        '\'=HYPERLINK("http://x","y")',
        "'+1+1",
        "'-2+3",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "plain",
        "-5",
        "+2.5",
    ]


@given(st.text(max_size=30))
def test_any_text_reads_back_as_itself_or_quoted(text: str) -> None:
    """issue 12, point 10: the CSV holds the text, or (when it would start a formula) the text
    after one single quote; nothing that would start a formula is left unquoted."""
    with tempfile.TemporaryDirectory() as folder:  # hypothesis runs the body many times
        path = Path(folder) / "x.csv"
        write_csv(path, ["text"], [[text]])
        (value,) = read_rows(path)[1]
    if text.startswith(FORMULA_STARTS) and not SIGNED_NUMBER.fullmatch(text):
        assert value == "'" + text
    else:
        assert value == text

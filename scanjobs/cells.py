"""Platform text as data in the CSVs we write: a cell a spreadsheet would run as a formula is quoted.

Section, planogram and file names, comments and error messages come from the platform, so
any of them may be `=HYPERLINK(...)` or `@SUM(...)`. OWASP's CSV-injection practice: a text
cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading single
quote, which spreadsheets read as "this is text". Only text is touched: our ids, counts and
percentages are numbers, and a text that is only a signed number (`-5`) starts no formula.
The Excel report holds text cells as strings instead (`report/excel.py`).
"""

from __future__ import annotations

import re

__all__ = ["FORMULA_STARTS", "csv_cell", "csv_text"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_SIGNED_NUMBER = re.compile(r"[+-][0-9]+(\.[0-9]+)?")


def csv_text(text: str) -> str:
    """`text` as a CSV cell that no spreadsheet runs as a formula."""
    if text.startswith(FORMULA_STARTS) and not _SIGNED_NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_cell(value: object) -> object:
    """A value of a CSV row: text made safe by `csv_text`, anything else (numbers, None) as it is."""
    return csv_text(value) if isinstance(value, str) else value

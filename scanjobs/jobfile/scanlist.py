"""Scan lists a job names: a column of scan ids (`scans.file`) or source/target pairs (`scans.pairs`).

Read by `validate` (the loader) and by the run, with the same rules: an id is written in ASCII
digits and fits PostgreSQL's bigint, as the platform's ids do; every refusal names its line.
"""

from __future__ import annotations

import csv
import functools
import io
from pathlib import Path

from scanjobs.errors import JobError
from scanjobs.jobfile.textfile import read_utf8

__all__ = ["ID_COLUMNS", "MAX_SCAN_ID", "read_id_column", "read_pairs_csv", "scan_id"]

ID_COLUMNS = ("scan_id", "source_scan_id", "id", "scan")
MAX_SCAN_ID = 2**63 - 1  # bigint: the schema's positiveInt maximum too
_SHOWN = 40  # characters of a refused cell shown in a message
_DIGITS = len(str(MAX_SCAN_ID))


def scan_id(cell: str) -> int | None:
    """The scan id a cell holds (1 to MAX_SCAN_ID, ASCII digits), or None.

    str.isdigit alone admits '²' (int() then raises) and '١٢' (read as 12); the length test
    comes before int(), which refuses texts of more than 4300 digits, leading zeros included,
    with ValueError.
    """
    text = cell.strip()
    digits = text.lstrip("0")
    if not (text.isascii() and text.isdigit()) or len(digits) > _DIGITS:
        return None
    value = int(digits or "0")
    return value if 0 < value <= MAX_SCAN_ID else None


def scan_ids(cells: list[str]) -> list[int] | None:
    """`scan_id` of each cell when every cell holds one, else None (the caller then names the
    cells that do not): the same rule, checked over the whole list at once, for lists of 100k."""
    if not cells:
        return []
    texts = [cell.strip() for cell in cells]
    joined = "".join(texts)
    if not (all(texts) and joined.isascii() and joined.isdigit()):
        return None
    if max(map(len, texts)) > _DIGITS:
        return None  # too long, or leading zeros: left to scan_id
    values = list(map(int, texts))
    if min(values) < 1 or max(values) > MAX_SCAN_ID:
        return None
    return values


def _shown(cell: str) -> str:
    return repr(cell if len(cell) <= _SHOWN else cell[:_SHOWN] + "...")


def _rows(path: Path, what: str, text: str | None = None) -> list[tuple[int, list[str]]]:
    """(first line, cells) of each CSV record with a non-blank cell (of `text`, the file's text
    when already read)."""
    reader = csv.reader(io.StringIO(read_utf8(path, what) if text is None else text, newline=""))
    rows: list[tuple[int, list[str]]] = []
    line = 1
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((line, row))
            line = reader.line_num + 1  # a quoted cell may span lines
    except csv.Error as exc:
        raise JobError(f"{path}: line {reader.line_num}: not CSV ({exc})") from None
    return rows


def read_id_column(path: Path) -> list[int]:
    """Scan ids from a CSV (a column named scan_id/source_scan_id/id, or the only column) or text.

    Read once per version of the file: validating the job and running it both need the ids,
    and a list of 100k of them takes a third of a second to read."""
    try:
        info = path.stat()
    except OSError:
        return list(_read_id_column(path, None))  # says why it cannot be read
    return list(_read_id_column(path, (info.st_ino, info.st_size, info.st_mtime_ns)))


@functools.lru_cache(maxsize=4)
def _read_id_column(path: Path, version: tuple[int, int, int] | None) -> tuple[int, ...]:
    text = read_utf8(path, "scan list")
    # the cells of a column (a record's each), and each record's first line (to name a bad cell)
    if '"' in text or "," in text:
        rows = _rows(path, "scan list", text)
        first = rows[0][1] if rows else []

        def cells_of(column: int) -> list[str]:
            return [row[column] if column < len(row) else "" for _, row in rows]

        def lines_of() -> list[int]:
            return [line for line, _ in rows]

    else:  # one column, nothing quoted: its lines are its records, as the csv module reads them
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        records = list(filter(str.strip, lines))  # no tuple per line: 100k lines in 10 ms
        first = records[:1]

        def cells_of(column: int) -> list[str]:
            return records

        def lines_of() -> list[int]:
            return [n for n, line in enumerate(lines, start=1) if line.strip()]

    if not first:
        raise JobError(f"the scan list {path} is empty")
    header = [c.strip().lower() for c in first]
    column = next((header.index(c) for c in ID_COLUMNS if c in header), None)
    skip = 0 if column is None else 1  # the header
    if column is None:
        if len(header) != 1 and not all(scan_id(c) is not None for c in first):
            raise JobError(f"{path}: no scan id column (name one of: {', '.join(ID_COLUMNS)})")
        column = 0
    cells = cells_of(column)[skip:]
    ids = scan_ids(cells)
    if ids is None:  # a cell that is not a scan id, or one with leading zeros: cell by cell
        ids, bad = [], []
        for line, cell in zip(lines_of()[skip:], cells, strict=True):
            number = scan_id(cell)
            if number is None:
                bad.append(f"line {line}: {_shown(cell.strip())}")
            else:
                ids.append(number)
        if bad:
            raise JobError(f"{path}: not scan ids (whole numbers from 1 to {MAX_SCAN_ID}):", bad[:20])
    if not ids:
        raise JobError(f"the scan list {path} has no scan ids")
    return tuple(dict.fromkeys(ids))


def read_pairs_csv(path: Path) -> list[tuple[int, int | None]]:
    """Source_Scan_ID,Target_Scan_ID rows (header names case-insensitive); empty target = not copied."""
    rows = _rows(path, "pairs file")
    header = rows[0][1] if rows else []
    columns = {name.strip().lower(): i for i, name in enumerate(header)}  # a repeated name: the last
    src_col, tgt_col = columns.get("source_scan_id"), columns.get("target_scan_id")
    if src_col is None or tgt_col is None:
        found = ", ".join(name.strip()[:_SHOWN] for name in header[:10]) or "nothing"
        raise JobError(f"{path}: needs columns Source_Scan_ID,Target_Scan_ID (found: {found})")
    pairs: list[tuple[int, int | None]] = []
    bad: list[str] = []
    for line, row in rows[1:]:
        src = row[src_col].strip() if src_col < len(row) else ""
        tgt = row[tgt_col].strip() if tgt_col < len(row) else ""
        if not src and not tgt:
            continue
        source, target = scan_id(src), scan_id(tgt) if tgt else None
        if source is None or (tgt and target is None):
            bad.append(f"line {line}: {_shown(src)},{_shown(tgt)}")
            continue
        pairs.append((source, target))
    if bad:
        raise JobError(f"{path}: not scan id pairs (whole numbers from 1 to {MAX_SCAN_ID}):", bad[:20])
    if not pairs:
        raise JobError(f"{path} holds no pairs")
    return pairs

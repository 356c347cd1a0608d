"""What a database lacks of what some queries read (platform/columns.py, the pure part)."""

from __future__ import annotations

import pytest

from scanjobs.platform.columns import FILEUPLOAD, QUERY_COLUMNS, SECTION, Gaps, gaps, needed


def _everything() -> dict[str, set[str]]:
    present: dict[str, set[str]] = {}
    for tables in QUERY_COLUMNS.values():
        for table, columns in tables.items():
            present.setdefault(table, set()).update(columns)
    return present


def test_a_schema_with_every_declared_column_lacks_nothing() -> None:
    """issue 13, point 10"""
    assert not gaps(_everything(), QUERY_COLUMNS)


def test_missing_columns_and_tables_are_named_with_their_readers() -> None:
    """issue 13, point 10: one line names every gap, and which query reads it."""
    present = _everything()
    present[SECTION].discard("name")
    del present[FILEUPLOAD]
    found = gaps(present, ["section_names", "resolve_sections", "unclaimed_uploads", "store_exists"])
    assert found.columns == {(SECTION, "name"): ("resolve_sections", "section_names")}
    assert found.tables == {FILEUPLOAD: ("unclaimed_uploads",)}
    assert found.names() == [FILEUPLOAD, f"{SECTION}.name"]
    assert found.describe() == (
        f"table {FILEUPLOAD} (read by unclaimed_uploads), "
        f"{SECTION}.name (read by resolve_sections, section_names)"
    )
    # what other queries read of them is not theirs to report
    assert found.of(frozenset({"section_names"})) == Gaps(
        {}, {(SECTION, "name"): ("resolve_sections", "section_names")}
    )
    assert not found.of(frozenset({"store_exists"}))


def test_only_the_queries_given_count() -> None:
    """issue 13, point 10: a job that does not read a column is not stopped by its absence."""
    present = _everything()
    present[SECTION].discard("name")
    assert not gaps(present, ["scan_details", "scans_with_files"])
    assert needed(["store_exists"]) == {"master_data_implementation_store": {"id": ("store_exists",)}}


def test_an_unknown_query_is_a_bug_not_a_gap() -> None:
    with pytest.raises(KeyError):
        needed(["no_such_query"])

"""The tables and columns each named query reads, and which of them a database lacks.

`QUERY_COLUMNS` is the one declaration: a row per query of `sql/`, naming every table and column
that query reads (tests/integration/test_sql_declared_columns.py holds it to the SQL, running
each query against exactly these). A plan or run checks the queries it will send against the
database's own list (information_schema.columns, `PlatformDB.table_columns`) before it relies on
them, so a platform whose schema differs is named at once instead of failing mid-run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from scanjobs.platform.db import PlatformDB

__all__ = ["QUERY_COLUMNS", "SCHEMA_QUERY", "Gaps", "needed", "gaps", "schema_gaps"]

STORE = "master_data_implementation_store"
CATEGORY = "master_data_implementation_category"
FILEUPLOAD = "master_data_implementation_fileupload"
PLANOGRAM = "planograms_implementation_planogram"
PLANOGRAMSTORE = "planograms_implementation_planogramstore"
SECTION = "planograms_implementation_planogramsection"
SECTIONPRODUCT = "planograms_implementation_planogramsectionproduct"
SCAN = "realograms_implementation_scan"
SCANFILE = "realograms_implementation_scanfile"
BAY = "realograms_implementation_realogrambay"
REPORT = "planograms_compliance_planogramcompliancereport"
STORE_COMPLIANCE = "planograms_compliance_storeplanogramcompliance"
MAJORITY_LOG = "planograms_compliance_majorityv2log"

# The query that reads the schema itself (information_schema), not a platform table.
SCHEMA_QUERY = "table_columns"


def _cols(names: str) -> frozenset[str]:
    return frozenset(names.split())


QUERY_COLUMNS: Mapping[str, Mapping[str, frozenset[str]]] = {
    "category_names": {CATEGORY: _cols("id name")},
    "clock": {},
    "download_info": {
        SCAN: _cols("id active_realogram_id provided_values"),
        SCANFILE: _cols("id scan_id file_id file_type"),
        REPORT: _cols("id realogram_id section_name"),
    },
    "processing_status": {SCAN: _cols("id status active_realogram_id"), REPORT: _cols("realogram_id")},
    "resolve_categories": {CATEGORY: _cols("id name")},
    "resolve_sections": {
        SECTION: _cols("id planogram_id name"),
        PLANOGRAM: _cols("id name"),
        PLANOGRAMSTORE: _cols("planogram_id store_id"),
    },
    "resolve_store_planograms": {
        PLANOGRAMSTORE: _cols("id planogram_id store_id"),
        PLANOGRAM: _cols("id name"),
    },
    "scan_details": {
        SCAN: _cols("id status active_realogram_id"),
        BAY: _cols("realogram_id"),
        REPORT: _cols(
            "id realogram_id store_planogram_id planogram_id section_id section_name "
            "compliance_rates scan_created_date"
        ),
        PLANOGRAMSTORE: _cols("id planogram_id"),
        PLANOGRAM: _cols("id name"),
        SECTIONPRODUCT: _cols("section_id action merch_method"),
        STORE_COMPLIANCE: _cols("id store_planogram_id date pre_compliance post_compliance pre_osa post_osa"),
        MAJORITY_LOG: _cols("id store_planogram_id data"),
    },
    "scan_ids_existing": {SCAN: _cols("id")},
    "scan_ids_query": {SCAN: _cols("id store_id created_at status")},
    "scans_with_files": {
        SCAN: _cols("id store_id created_at status provided_values"),
        SCANFILE: _cols("id scan_id file_id file_type"),
    },
    "section_names": {SECTION: _cols("id planogram_id name"), PLANOGRAM: _cols("id name")},
    "scans_using_files": {SCAN: _cols("id store_id"), SCANFILE: _cols("id scan_id file_id")},
    "store_exists": {STORE: _cols("id")},
    "store_scan_dates": {SCAN: _cols("store_id created_at status")},
    "store_planogram_names": {PLANOGRAMSTORE: _cols("id planogram_id"), PLANOGRAM: _cols("id name")},
    "unclaimed_uploads": {
        FILEUPLOAD: _cols("id store_id checksum original_filename created_at"),
        SCANFILE: _cols("file_id"),
    },
}


def needed(queries: Iterable[str]) -> dict[str, dict[str, tuple[str, ...]]]:
    """Pure: table -> column -> the queries (sorted) among `queries` that read it."""
    out: dict[str, dict[str, list[str]]] = {}
    for query in sorted(set(queries)):
        for table, columns in QUERY_COLUMNS[query].items():
            for column in columns:
                out.setdefault(table, {}).setdefault(column, []).append(query)
    return {t: {c: tuple(qs) for c, qs in sorted(cols.items())} for t, cols in sorted(out.items())}


@dataclass(frozen=True, slots=True)
class Gaps:
    """What a database lacks of what some queries read: whole tables, and columns of the tables
    it has, each with the queries that read it."""

    tables: dict[str, tuple[str, ...]] = field(default_factory=dict)
    columns: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.tables or self.columns)

    def of(self, queries: AbstractSet[str]) -> Gaps:
        """The part of these gaps that one of `queries` reads."""
        return Gaps(
            {t: qs for t, qs in self.tables.items() if not queries.isdisjoint(qs)},
            {tc: qs for tc, qs in self.columns.items() if not queries.isdisjoint(qs)},
        )

    def names(self) -> list[str]:
        """`table.column` per missing column and `table` per missing table, sorted."""
        return sorted([*self.tables, *(f"{t}.{c}" for t, c in self.columns)])

    def describe(self) -> str:
        """One line: every missing table and column, with the queries that read it."""
        parts = [f"table {t} (read by {', '.join(qs)})" for t, qs in sorted(self.tables.items())]
        parts += [f"{t}.{c} (read by {', '.join(qs)})" for (t, c), qs in sorted(self.columns.items())]
        return ", ".join(parts)


def gaps(present: Mapping[str, Iterable[str]], queries: Iterable[str]) -> Gaps:
    """Pure: what `present` (table -> the columns a database has) lacks of what `queries` read."""
    tables: dict[str, tuple[str, ...]] = {}
    columns: dict[tuple[str, str], tuple[str, ...]] = {}
    for table, wanted in needed(queries).items():
        if table not in present:
            tables[table] = tuple(sorted({q for qs in wanted.values() for q in qs}))
            continue
        has = set(present[table])
        for column, readers in wanted.items():
            if column not in has:
                columns[(table, column)] = readers
    return Gaps(tables, columns)


def schema_gaps(db: PlatformDB, queries: Iterable[str]) -> Gaps:
    """What `db` lacks (or may not read) of what `queries` read: one query of its schema."""
    wanted = list(queries)
    return gaps(db.table_columns(needed(wanted)), wanted)

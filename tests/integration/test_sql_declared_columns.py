"""Each query's declared tables and columns (platform/columns.py) are exactly what its SQL reads.

Held to PostgreSQL's own reading of the SQL, not to a parser of ours: each query runs against
temporary tables that have exactly the declared columns (types as the sandbox has them) and
nothing else on the search path; then each declared column, removed alone, must break it.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import psycopg
import pytest

from scanjobs.platform.columns import QUERY_COLUMNS, SCHEMA_QUERY
from scanjobs.sandbox import Sandbox

pytestmark = pytest.mark.integration


def _sql(name: str) -> str:
    return (resources.files("scanjobs.platform") / "sql" / f"{name}.sql").read_text("utf-8")


def _run(conn: psycopg.Connection[Any], name: str) -> None:
    text = _sql(name)
    # every parameter NULL: each is cast or compared where it is used, and no row is needed
    conn.execute(text.encode(), dict.fromkeys(re.findall(r"%\((\w+)\)s", text)))


@pytest.mark.parametrize("name", sorted(set(QUERY_COLUMNS) - {SCHEMA_QUERY}))
def test_declared_columns_are_what_the_query_reads(sandbox: Sandbox, name: str) -> None:
    """issue 13, point 10: the declaration a plan and a run check is the SQL's own truth."""
    declared = QUERY_COLUMNS[name]
    # The read-only user may make temporary tables (PUBLIC's TEMP right): with only pg_temp on
    # the search path, our unqualified names find them and nothing else.
    with psycopg.connect(**sandbox.db("target")) as conn, conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL search_path = pg_temp")
        for table, columns in declared.items():
            conn.execute(f"CREATE TEMP TABLE {table} (LIKE public.{table})")
            have = [
                r[0]
                for r in conn.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0",
                    (f"pg_temp.{table}",),
                )
            ]
            assert set(columns) <= set(have), (
                f"{name}: the sandbox's {table} lacks {set(columns) - set(have)}"
            )
            for extra in set(have) - set(columns):
                conn.execute(f'ALTER TABLE {table} DROP COLUMN "{extra}"')
        _run(conn, name)  # reads nothing undeclared: no other table, no other column
        for table, columns in declared.items():
            for column in sorted(columns):
                with pytest.raises(psycopg.errors.UndefinedColumn), conn.transaction(force_rollback=True):
                    conn.execute(f'ALTER TABLE {table} DROP COLUMN "{column}"')
                    _run(conn, name)


def test_every_query_is_declared() -> None:
    """issue 13, point 10: a new query cannot escape the check by being left out."""
    files = {
        p.name.removesuffix(".sql")
        for p in (resources.files("scanjobs.platform") / "sql").iterdir()
        if p.name.endswith(".sql")
    }
    assert files - {SCHEMA_QUERY} == set(QUERY_COLUMNS)

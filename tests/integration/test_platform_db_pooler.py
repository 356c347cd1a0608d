"""PlatformDB behind a transaction pooler: no server-side prepared statement is ever left behind."""

from __future__ import annotations

from typing import Any

import pytest

from scanjobs.platform.db import PlatformDB

pytestmark = pytest.mark.integration


def test_a_query_run_many_times_is_never_prepared_on_the_server(sandbox: Any) -> None:
    """issue 13, point 9: psycopg prepares a query on the server after its 5th run. Behind a
    transaction pooler (the -maint hosts and proxyuser suggest one) the next transaction may
    reach another server connection, where that statement does not exist, and the query fails.
    The session must hold no prepared statement however often a query runs."""
    db = sandbox.info["instances"]["source"]["db"]
    with PlatformDB(db["host"], db["port"], db["dbname"], db["user"], db["password"]) as platform_db:
        for _ in range(12):
            assert platform_db.store_exists(sandbox.info["source_store_ids"][0])
        # The session's own view: pg_prepared_statements lists only the current session's.
        conn = platform_db._connection()
        prepared = conn.execute("SELECT name, statement FROM pg_prepared_statements").fetchall()
        conn.rollback()
    assert prepared == []

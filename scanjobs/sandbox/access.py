"""What the read-only database user may read: every table, but for what `--without-column` hides."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from scanjobs.sandbox.folder import SandboxError

__all__ = ["grant_read_access"]


def grant_read_access(conn: psycopg.Connection[Any], user: str, hidden: dict[str, set[str] | None]) -> None:
    """Let `user` read every table of the database's public schema, except the `hidden` tables
    (None) and columns: to `user` those are not there (information_schema.columns lists only
    what a user may read, and a query naming them fails), as on a platform whose schema lacks
    them, while the sandbox's own connections still use them.

    Applied at every start, so a start with other hidden columns (or none) on kept data sees
    its own.
    """
    who = sql.Identifier(user)
    conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(who))
    for table, columns in sorted(hidden.items()):
        found = [
            str(row[0])
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
                (table,),
            ).fetchall()
        ]
        if not found:
            raise SandboxError(f"--without-column: there is no table {table}")
        unknown = sorted((columns or set()) - set(found))
        if unknown:
            raise SandboxError(f"--without-column: {table} has no column {', '.join(unknown)}")
        # A table-level revoke takes its column privileges with it; then only the kept columns
        # are granted back.
        name = sql.Identifier(table)
        conn.execute(sql.SQL("REVOKE SELECT ON {} FROM {}").format(name, who))
        kept = [c for c in found if columns is not None and c not in columns]
        if kept:
            conn.execute(
                sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(
                    sql.SQL(", ").join(map(sql.Identifier, kept)), name, who
                )
            )

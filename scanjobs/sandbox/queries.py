"""The SQL behind the API's endpoints: files, scans, client request uids, stores and sections."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from scanjobs.sandbox.tables import TABLES, ScanStatus

Conn = psycopg.AsyncConnection[Any]


async def file_row(conn: Conn, file_id: int) -> tuple[Any, ...] | None:
    """(id, file, original_filename, input_type, size) of one uploaded file, or None."""
    cur = await conn.execute(
        f"SELECT id, file, original_filename, input_type, size FROM {TABLES['file']} WHERE id = %s",
        (file_id,),
    )
    return await cur.fetchone()


async def insert_file(
    conn: Conn,
    *,
    name: str,
    original: str,
    input_type: str,
    ctype: str,
    size: int,
    checksum: str,
    store: str | None,
    uid: str | None,
) -> tuple[int, str] | None:
    """A new file row's (id, storage path), or None when `store` names no store.

    One round trip: the id, its storage path, the store's existence check, and the answer of
    the request uid `uid` (claimed by claim_request) when there is one.
    """
    cur = await conn.execute(
        f"WITH f AS (INSERT INTO {TABLES['file']} (id, file, original_filename, input_type,"
        " content_type, size, checksum, store_id)"
        " SELECT n.id, 'uploads/' || n.id || '-' || %(name)s, %(original)s, %(input_type)s,"
        " %(ctype)s, %(size)s, %(checksum)s, %(store)s::bigint"
        f" FROM (SELECT nextval(pg_get_serial_sequence('{TABLES['file']}', 'id')) AS id) n"
        f" WHERE %(store)s::bigint IS NULL OR EXISTS (SELECT 1 FROM {TABLES['store']}"
        " WHERE id = %(store)s::bigint) RETURNING id, file),"
        " c AS (UPDATE sandbox_client_request SET made_id = f.id, settled_at = now() FROM f"
        " WHERE endpoint = 'upload' AND uid = %(uid)s)"
        " SELECT id, file FROM f",
        {
            "uid": uid,
            "name": name,
            "original": original,
            "input_type": input_type,
            "ctype": ctype,
            "size": size,
            "checksum": checksum,
            "store": store,
        },
    )
    row = await cur.fetchone()
    return None if row is None else (row[0], row[1])


async def delete_file(conn: Conn, file_id: int) -> None:
    await conn.execute(f"DELETE FROM {TABLES['file']} WHERE id = %s", (file_id,))


async def claim_request(conn: Conn, endpoint: str, uid: str, forget_after: float) -> bool:
    """Claim a client request uid at an endpoint ('create' or 'upload'); False when it was
    claimed before. The primary key makes the claim atomic across concurrent requests.

    A claim answered `forget_after` seconds ago or more (negative: never) is forgotten first; one
    whose request still runs never is (the platform holds the uid while it works: 424).
    """
    if forget_after >= 0:
        await conn.execute(
            "DELETE FROM sandbox_client_request WHERE endpoint = %s AND uid = %s"
            " AND settled_at <= now() - make_interval(secs => %s)",
            (endpoint, uid, forget_after),
        )
    cur = await conn.execute(
        "INSERT INTO sandbox_client_request (endpoint, uid) VALUES (%s, %s)"
        " ON CONFLICT DO NOTHING RETURNING uid",
        (endpoint, uid),
    )
    return await cur.fetchone() is not None


async def claimed_answer(conn: Conn, endpoint: str, uid: str) -> int | None:
    """The scan or file made under a claimed uid; None while its request is still running."""
    cur = await conn.execute(
        "SELECT made_id FROM sandbox_client_request WHERE endpoint = %s AND uid = %s", (endpoint, uid)
    )
    row = await cur.fetchone()
    return None if row is None else row[0]


async def release_request(conn: Conn, endpoint: str, uid: str) -> None:
    """Forget a claim whose request failed, so that a retry may make what it asks for."""
    await conn.execute("DELETE FROM sandbox_client_request WHERE endpoint = %s AND uid = %s", (endpoint, uid))


async def create_scan(conn: Conn, payload: dict[str, Any], uid: str | None) -> dict[str, Any]:
    """Insert the scan, its files in order and the uid's answer in one statement; the summary."""
    cur = await conn.execute(
        f"WITH s AS (INSERT INTO {TABLES['scan']} (store_id, status, has_report, selected_category_id,"
        " provided_values) VALUES (%(store)s, %(status)s, false, %(category)s, %(raw)s)"
        " RETURNING id, status, store_id),"
        f" f AS (INSERT INTO {TABLES['scanfile']} (scan_id, file_id, file_type)"
        " SELECT s.id, fu.id, fu.input_type FROM s"
        " CROSS JOIN unnest(%(files)s::bigint[]) WITH ORDINALITY AS u(file_id, n)"
        f" JOIN {TABLES['file']} fu ON fu.id = u.file_id ORDER BY u.n RETURNING id, file_id),"
        " c AS (UPDATE sandbox_client_request SET made_id = s.id, settled_at = now() FROM s"
        " WHERE endpoint = 'create' AND uid = %(uid)s)"
        " SELECT s.id, s.status, s.store_id, ARRAY(SELECT file_id FROM f ORDER BY id) FROM s",
        {
            "store": payload["store"],
            "status": ScanStatus.CREATED,
            "category": payload.get("category_id"),
            "raw": Jsonb({"_raw_data": payload}),
            "files": payload["files"],
            "uid": uid,
        },
    )
    row = await cur.fetchone()
    assert row is not None
    return {"id": row[0], "status": row[1], "store": row[2], "files": list(row[3])}


async def scan_summary(conn: Conn, scan_id: int) -> dict[str, Any] | None:
    """A scan as the create call answers it (a replayed uid too), or None; the detail is
    `scan_detail`."""
    cur = await conn.execute(
        "SELECT id, status, store_id,"
        f" ARRAY(SELECT file_id FROM {TABLES['scanfile']} WHERE scan_id = s.id ORDER BY id)"
        f" FROM {TABLES['scan']} s WHERE id = %s",
        (scan_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return {"id": row[0], "status": row[1], "store": row[2], "files": list(row[3])}


async def scan_detail(conn: Conn, scan_id: int) -> dict[str, Any] | None:
    """What the scan detail tells of a scan (handlers.py shapes it as the platform does), or None.

    `inputs` are [file id, storage path] in the scan's order; `mapped_store_planogram` is the
    store POG its first active report was mapped to.
    """
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT s.id, s.status, s.store_id, st.name AS store_name, st.custom_id,"
            " s.created_at AS created, s.processing_start_time, s.processing_finish_time,"
            " s.last_requeue, COALESCE(s.provided_values -> '_raw_data', s.provided_values) AS payload,"
            " COALESCE((SELECT jsonb_agg(jsonb_build_array(f.id, f.file) ORDER BY sf.id)"
            f"  FROM {TABLES['scanfile']} sf JOIN {TABLES['file']} f ON f.id = sf.file_id"
            "  WHERE sf.scan_id = s.id), '[]'::jsonb) AS inputs,"
            f" (SELECT r.store_planogram_id FROM {TABLES['report']} r"
            "  WHERE r.realogram_id = s.active_realogram_id AND r.is_last_active"
            "  ORDER BY r.id LIMIT 1) AS mapped_store_planogram"
            f" FROM {TABLES['scan']} s JOIN {TABLES['store']} st ON st.id = s.store_id WHERE s.id = %s",
            (scan_id,),
        )
        return await cur.fetchone()


async def copy_store(conn: Conn, template: int) -> int:
    """A new empty store with the template's store POGs and their daily compliance."""
    cur = await conn.execute(
        f"INSERT INTO {TABLES['store']} (name, custom_id) SELECT 'QA Copy Target ' || n.id, 'QA' || n.id"
        f" FROM (SELECT nextval(pg_get_serial_sequence('{TABLES['store']}', 'id')) AS id) n RETURNING id"
    )
    row = await cur.fetchone()
    assert row is not None
    store_id = int(row[0])
    cur = await conn.execute(
        f"SELECT id, planogram_id FROM {TABLES['planogramstore']} WHERE store_id = %s ORDER BY id",
        (template,),
    )
    for old_sp, planogram_id in await cur.fetchall():
        cur2 = await conn.execute(
            f"INSERT INTO {TABLES['planogramstore']} (planogram_id, store_id) VALUES (%s, %s) RETURNING id",
            (planogram_id, store_id),
        )
        new = await cur2.fetchone()
        assert new is not None
        await conn.execute(
            f"INSERT INTO {TABLES['spc']} (store_planogram_id, date, pre_compliance,"
            " post_compliance, pre_osa, post_osa, facing_compliance, sequence_pre_compliance,"
            " sequence_post_compliance, initial_pre_compliance)"
            " SELECT %s, date, pre_compliance, post_compliance, pre_osa, post_osa,"
            " facing_compliance, sequence_pre_compliance, sequence_post_compliance,"
            f" initial_pre_compliance FROM {TABLES['spc']} WHERE store_planogram_id = %s",
            (new[0], old_sp),
        )
    return store_id


async def rename_section(conn: Conn, section_id: int, name: str) -> int:
    """Rename a section and its reports' section_name; how many sections were renamed (0 or 1)."""
    cur = await conn.execute(
        "UPDATE planograms_implementation_planogramsection SET name = %s WHERE id = %s",
        (name, section_id),
    )
    await conn.execute(
        "UPDATE planograms_compliance_planogramcompliancereport SET section_name = %s WHERE section_id = %s",
        (name, section_id),
    )
    return cur.rowcount


async def unfinished_scans(conn: Conn) -> list[int]:
    """Scans created but not processed when the sandbox last stopped (kept data only)."""
    cur = await conn.execute(
        f"SELECT id FROM {TABLES['scan']} WHERE status = ANY(%s) ORDER BY id",
        ([ScanStatus.CREATED, ScanStatus.IN_PROGRESS],),
    )
    return [int(r[0]) for r in await cur.fetchall()]

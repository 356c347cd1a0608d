"""The platform's (DRF's) answers to a bad upload or scan request, in DRF's order and words."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from scanjobs.sandbox.instance import Pool
from scanjobs.sandbox.tables import TABLES

INPUT_TYPES = ("image", "video", "keyframe")
UID_HEADER = "REB-CLIENT-REQUEST-UID"
_UID = re.compile(r"[\x21-\x7e]{1,128}")  # what the uid memory keeps (a uuid is 36 of these)
NOT_FOUND = {"detail": "Not found."}
_REFERENCES = (("category_id", "category"), ("section_id", "section"), ("store_planogram", "planogramstore"))


def error(field_name: str, message: str) -> web.Response:
    """DRF's 400 for one field."""
    return web.json_response({field_name: [message]}, status=400)


def invalid_pk(field_name: str, value: Any) -> web.Response:
    """DRF's 400 for a reference to a row that does not exist."""
    return error(field_name, f'Invalid pk "{value}" - object does not exist.')


def not_found() -> web.Response:
    """DRF's 404."""
    return web.json_response(NOT_FOUND, status=404)


def busy() -> web.Response:
    """The platform's 424: the first request with this uid is still being processed (the
    platform's client reads its `error`)."""
    return web.json_response({"error": "Another request is already processing"}, status=424)


def request_uid(headers: Any) -> tuple[str | None, web.Response | None]:
    """The request's REB-CLIENT-REQUEST-UID (None without one), or the 400 for a uid the sandbox
    cannot keep: what the platform does with such a uid is unknown, a 500 would be wrong."""
    uid = headers.get(UID_HEADER) or None
    if uid is not None and not _UID.fullmatch(uid):
        return None, error(UID_HEADER, "Expected at most 128 printable ASCII characters, such as a UUID.")
    return uid, None


def validate_upload(fields: dict[str, str], filename: str | None, checksum: str) -> web.Response | None:
    """The checks that need no database (the store's existence is checked by the insert).

    `checksum` is the MD5 hex of the bytes received, what the platform's client sends (an
    upload without one is accepted: the legacy scripts sent none).
    """
    if filename is None:
        return error("file", "No file was submitted.")
    input_type = fields.get("input_type")
    if input_type is None:
        return error("input_type", "This field is required.")
    if input_type not in INPUT_TYPES:
        return error("input_type", f'"{input_type}" is not a valid choice.')
    store = fields.get("store")
    if store and not store.isdigit():
        return invalid_pk("store", store)
    given = fields.get("checksum")
    if given and given.lower() != checksum:
        return error("checksum", "Checksum does not match the uploaded file.")
    return None


def _pk(value: Any) -> int | None:
    """`value` if it can be a primary key (an integer in bigint's range), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
        return value
    return None


async def validate_action(pool: Pool, payload: dict[str, Any]) -> web.Response | None:
    """DRF's answers, in DRF's order, with every existence check in one query."""
    files = payload.get("files")
    file_ids = [i for i in map(_pk, files) if i is not None] if isinstance(files, list) else []
    refs = {name: _pk(payload.get(name)) for name, _ in _REFERENCES}
    async with pool.connection() as conn:
        cur = await conn.execute(
            f"SELECT EXISTS (SELECT 1 FROM {TABLES['store']} WHERE id = %(store)s),"
            f" ARRAY(SELECT id FROM {TABLES['file']} WHERE id = ANY(%(files)s::bigint[])),"
            + ",".join(
                f" EXISTS (SELECT 1 FROM {TABLES[kind]} WHERE id = %({name})s::bigint)"
                for name, kind in _REFERENCES
            ),
            {"store": _pk(payload.get("store")), "files": file_ids, **refs},
        )
        row = await cur.fetchone()
    assert row is not None
    store_ok, found, *refs_ok = row
    if payload.get("store") is None:
        return error("store", "This field is required.")
    if not store_ok:
        return invalid_pk("store", payload["store"])
    if files is None:
        return error("files", "This field is required.")
    if not isinstance(files, list):
        kind = type(files).__name__
        return error("files", f'Expected a list of items but got type "{kind}".')
    if not files:
        return error("files", "This list may not be empty.")
    existing = set(found)
    for file_id in files:
        if _pk(file_id) not in existing:
            return invalid_pk("files", file_id)
    for (name, _), ok in zip(_REFERENCES, refs_ok, strict=True):
        value = payload.get(name)
        if value is not None and not ok:
            return invalid_pk(name, value)
    return None

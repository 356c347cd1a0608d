"""The HTTP API of one sandbox instance (aiohttp), speaking PLATFORM.md plus /_sandbox/ controls."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import psycopg
from aiohttp import web
from psycopg.types.json import Jsonb

from scanjobs.sandbox.faults import RuntimeConfig, Stats, fault_middleware
from scanjobs.sandbox.images import sniff_content_type
from scanjobs.sandbox.multipart import FormReader, MultipartError, boundary_of
from scanjobs.sandbox.seed_scans import SourceTruth
from scanjobs.sandbox.tables import TABLES

INPUT_TYPES = ("image", "video", "keyframe")
NOT_FOUND = {"detail": "Not found."}
_SMALL_FILE = 1 << 20  # files up to this size are held in memory (uploads, storage answers); larger stream


class Pool:
    """A few autocommit connections shared by the handlers of one instance."""

    def __init__(self, conninfo: str, size: int = 8) -> None:
        self._conninfo = conninfo
        self._size = size
        self._queue: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
        self._all: list[psycopg.AsyncConnection[Any]] = []

    async def open(self) -> None:
        for _ in range(self._size):
            conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            self._all.append(conn)
            self._queue.put_nowait(conn)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        conn = await self._queue.get()
        try:
            yield conn
        finally:
            self._queue.put_nowait(conn)

    async def close(self) -> None:
        for conn in self._all:
            with contextlib.suppress(Exception):
                await conn.close()


@dataclass
class MemoryStorage:
    """Small uploads kept in memory rather than on disk, up to `budget` bytes in all.

    Creating a file cost more CPU than the rest of an upload (0.4-0.6 ms on a busy disk), and the
    sandbox shares the machine with the scanjobs it serves. Nothing is lost by it: the sandbox
    reseeds its storage at every start anyway.
    """

    budget: int = 256 * 1024**2
    used: int = 0
    blobs: dict[str, bytes] = field(default_factory=dict)

    def put(self, rel: str, data: bytes) -> bool:
        if self.used + len(data) > self.budget:
            return False
        self.blobs[rel] = data
        self.used += len(data)
        return True


@dataclass
class Instance:
    """Everything the handlers of one instance need."""

    name: str
    pool: Pool
    storage: Path
    username: str
    password: str
    user_id: int
    template_store_id: int
    config: RuntimeConfig
    stats: Stats
    truth: dict[str, SourceTruth]
    api_url: str = ""
    tokens: set[str] = field(default_factory=set)
    process: Callable[[Instance, int], Coroutine[Any, Any, None]] | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    peers: list[Instance] = field(default_factory=list)  # every instance, for shared controls
    memory: MemoryStorage = field(default_factory=MemoryStorage)


def _error(field_name: str, message: str) -> web.Response:
    return web.json_response({field_name: [message]}, status=400)


def _invalid_pk(field_name: str, value: Any) -> web.Response:
    return _error(field_name, f'Invalid pk "{value}" - object does not exist.')


def _auth(inst: Instance, request: web.Request) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme != "Token" or token.strip() not in inst.tokens:
        raise web.HTTPUnauthorized(text='{"detail": "Invalid token."}', content_type="application/json")


def _storage_url(inst: Instance, rel: str) -> str:
    return f"{inst.api_url}/_storage/{quote(rel)}"


def _safe_name(name: str) -> str:
    """A storage file name from an uploaded name: no directories, only tame characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "upload"


def build_app(inst: Instance) -> web.Application:
    """The aiohttp application of one instance."""
    app = web.Application(
        middlewares=[fault_middleware(inst.config, inst.stats, random.Random(hash(inst.name)))],
        client_max_size=1024**3,
    )
    (inst.storage / "tmp").mkdir(parents=True, exist_ok=True)  # large uploads land here first
    (inst.storage / "uploads").mkdir(parents=True, exist_ok=True)

    async def token_auth(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = dict(await request.post())
        if body.get("username") != inst.username or body.get("password") != inst.password:
            return web.json_response(
                {"non_field_errors": ["Unable to log in with provided credentials."]}, status=400
            )
        token = secrets.token_hex(20)
        inst.tokens.add(token)
        return web.json_response({"id": inst.user_id, "token": token})

    async def file_meta(request: web.Request) -> web.Response:
        _auth(inst, request)
        raw = request.match_info["id"]
        if not raw.isdigit():
            return web.json_response(NOT_FOUND, status=404)
        async with inst.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT id, file, original_filename, input_type, size FROM {TABLES['file']} WHERE id = %s",
                (int(raw),),
            )
            row = await cur.fetchone()
        if row is None:
            return web.json_response(NOT_FOUND, status=404)
        return web.json_response(
            {
                "id": row[0],
                "file": _storage_url(inst, row[1]),
                "original_filename": row[2],
                "input_type": row[3],
                "size": row[4],
            }
        )

    storage_root = inst.storage.resolve()

    async def storage(request: web.Request) -> web.StreamResponse:
        rel = request.match_info["path"]
        if "\x00" in rel or any(part in ("", ".", "..") for part in rel.split("/")):
            return web.json_response(NOT_FOUND, status=404)  # nothing outside the storage folder
        blob = inst.memory.blobs.get(rel)
        if blob is not None:  # answered whole; HTTP lets a server ignore a Range header
            ctype = sniff_content_type(blob[:8]) or "application/octet-stream"
            return web.Response(body=blob, headers={"Content-Type": ctype})
        path = os.path.join(storage_root, rel)
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                head = fh.read(_SMALL_FILE if "Range" not in request.headers else 8)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return web.json_response(NOT_FOUND, status=404)
        ctype = sniff_content_type(head[:8]) or "application/octet-stream"
        if len(head) == size:  # a whole small file: one plain response
            return web.Response(body=head, headers={"Content-Type": ctype})
        # FileResponse streams from disk and implements Range (206 + Content-Range).
        return web.FileResponse(path, headers={"Content-Type": ctype})

    async def upload(request: web.Request) -> web.Response:
        _auth(inst, request)
        boundary = boundary_of(request.headers.get("Content-Type", ""))
        if boundary is None:
            return _error("file", "No file was submitted.")
        fields: dict[str, str] = {}
        tmp = inst.storage / "tmp" / uuid.uuid4().hex
        digest, size, filename = hashlib.sha256(), 0, None
        held = bytearray()  # a small file stays in memory; a large one streams to `tmp`
        spill: BinaryIO | None = None
        try:
            form = FormReader(request.content.read, boundary)
            try:
                async for part in form.parts():
                    if part.name is None:
                        continue
                    if part.name == "file" and filename is None:
                        filename = part.filename or "upload"
                        async for chunk in form.chunks():
                            digest.update(chunk)
                            size += len(chunk)
                            if spill is not None:
                                spill.write(chunk)
                                continue
                            held += chunk
                            if len(held) > _SMALL_FILE:  # streamed on: 20 MB never sit in memory
                                spill = open(tmp, "wb")  # noqa: SIM115 - closed in finally
                                spill.write(held)
                                del held[8:]  # the head is kept to sniff the type
                    else:
                        fields[part.name] = (await form.read(1 << 20)).decode("utf-8", errors="replace")
            except MultipartError as exc:
                return web.json_response({"detail": f"Multipart form parse error - {exc}"}, status=400)
            error = _validate_upload(fields, filename, digest.hexdigest())
            if error is not None:
                return error
            assert filename is not None
            original = filename.replace("\\", "/").rsplit("/", 1)[-1]
            ctype = sniff_content_type(bytes(held[:8])) or "application/octet-stream"
            name = _safe_name(original)
            ext = {"image/png": ".png", "image/jpeg": ".jpg"}.get(ctype, "")
            if ext and not name.lower().endswith((ext, ".jpeg")):
                name += ext  # storage names carry the real type even when the upload's didn't
            store = fields.get("store") or None
            async with inst.pool.connection() as conn:
                # One round trip: the id, its storage path, and the store's existence check.
                cur = await conn.execute(
                    f"INSERT INTO {TABLES['file']} (id, file, original_filename, input_type,"
                    " content_type, size, checksum, store_id)"
                    " SELECT n.id, 'uploads/' || n.id || '-' || %(name)s, %(original)s, %(input_type)s,"
                    " %(ctype)s, %(size)s, %(checksum)s, %(store)s::bigint"
                    f" FROM (SELECT nextval(pg_get_serial_sequence('{TABLES['file']}', 'id')) AS id) n"
                    f" WHERE %(store)s::bigint IS NULL OR EXISTS (SELECT 1 FROM {TABLES['store']}"
                    " WHERE id = %(store)s::bigint) RETURNING id, file",
                    {"name": name, "original": original, "input_type": fields["input_type"],
                     "ctype": ctype, "size": size, "checksum": digest.hexdigest(), "store": store},
                )
                row = await cur.fetchone()
                if row is None:
                    return _invalid_pk("store", store)
                file_id, rel = row
                try:
                    if spill is None:
                        if not inst.memory.put(rel, bytes(held)):
                            with open(inst.storage / rel, "wb") as fh:
                                fh.write(held)
                    else:
                        spill.close()
                        os.replace(tmp, inst.storage / rel)
                except BaseException:
                    await conn.execute(f"DELETE FROM {TABLES['file']} WHERE id = %s", (file_id,))
                    raise
            inst.stats.files_uploaded += 1
            return web.json_response(
                {
                    "id": file_id,
                    "file": _storage_url(inst, rel),
                    "original_filename": original,
                    "input_type": fields["input_type"],
                    "size": size,
                },
                status=201,
            )
        finally:
            if spill is not None:
                spill.close()
                tmp.unlink(missing_ok=True)

    async def create_action(request: web.Request) -> web.Response:
        _auth(inst, request)
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return web.json_response(
                {"non_field_errors": ["Invalid data. Expected a dictionary."]}, status=400
            )
        error = await _validate_action(inst, payload)
        if error is not None:
            return error
        uid = request.headers.get("REB-CLIENT-REQUEST-UID")
        if uid:
            async with inst.pool.connection() as conn:
                # The primary key makes the claim atomic across concurrent requests.
                cur = await conn.execute(
                    "INSERT INTO sandbox_client_request (uid) VALUES (%s)"
                    " ON CONFLICT DO NOTHING RETURNING uid",
                    (uid,),
                )
                if await cur.fetchone() is None:
                    cur = await conn.execute(
                        "SELECT scan_id FROM sandbox_client_request WHERE uid = %s", (uid,)
                    )
                    row = await cur.fetchone()
                    if row is None or row[0] is None:
                        return web.json_response(
                            {"detail": "Another request is already processing"}, status=424
                        )
                    return web.json_response(await _scan_summary(conn, row[0]), status=201)
        try:
            await asyncio.sleep(0.02)  # the real platform does work here; widens the race
            async with inst.pool.connection() as conn:
                body = await _create_scan(conn, payload, uid)
        except BaseException:
            if uid:
                async with inst.pool.connection() as conn:
                    await conn.execute("DELETE FROM sandbox_client_request WHERE uid = %s", (uid,))
            raise
        scan_id = body["id"]
        inst.stats.scans_created += 1
        if inst.process is not None:
            task = asyncio.create_task(inst.process(inst, scan_id))
            inst.tasks.add(task)
            task.add_done_callback(inst.tasks.discard)
        return web.json_response(body, status=201)

    async def action_detail(request: web.Request) -> web.Response:
        _auth(inst, request)
        raw = request.match_info["id"]
        if not raw.isdigit():
            return web.json_response(NOT_FOUND, status=404)
        async with inst.pool.connection() as conn:
            body = await _scan_summary(conn, int(raw), detail=True)
        if body is None:
            return web.json_response(NOT_FOUND, status=404)
        return web.json_response(body)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(inst.stats.as_dict())

    async def stats_reset(request: web.Request) -> web.Response:
        for peer in inst.peers:
            peer.stats.reset()
        return web.json_response(inst.stats.as_dict())

    async def config(request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                inst.config.update(await request.json())
            except (ValueError, TypeError, AttributeError) as exc:
                return web.json_response({"detail": str(exc)}, status=400)
        return web.json_response(inst.config.as_dict())

    async def new_store(request: web.Request) -> web.Response:
        async with inst.pool.connection() as conn, conn.transaction():
            store_id = await _copy_store(conn, inst.template_store_id)
        return web.json_response({"id": store_id}, status=201)

    app.router.add_post("/api/v4/token-auth/", token_auth)
    app.router.add_get("/api/v1/master-data/file-upload/{id}/", file_meta)
    app.router.add_get("/_storage/{path:.+}", storage)
    app.router.add_post("/api/v4/processing/upload/", upload)
    app.router.add_post("/api/v4/processing/actions/", create_action)
    app.router.add_get("/api/v4/processing/actions/{id}/", action_detail)
    app.router.add_get("/_sandbox/stats", stats)
    app.router.add_post("/_sandbox/stats/reset", stats_reset)
    app.router.add_get("/_sandbox/config", config)
    app.router.add_post("/_sandbox/config", config)
    async def rename_section(request: web.Request) -> web.Response:
        # Test control: any text a real platform could hold (hostile names for download tests).
        raw = request.match_info["id"]
        name = (await request.json()).get("name")
        if not raw.isdigit() or not isinstance(name, str):
            return web.json_response({"detail": "give a section id and a JSON {name}"}, status=400)
        async with inst.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "UPDATE planograms_implementation_planogramsection SET name = %s WHERE id = %s",
                (name, int(raw)),
            )
            await conn.execute(
                "UPDATE planograms_compliance_planogramcompliancereport SET section_name = %s "
                "WHERE section_id = %s", (name, int(raw)))
        if cur.rowcount != 1:
            return web.json_response(NOT_FOUND, status=404)
        return web.json_response({"id": int(raw), "name": name})

    app.router.add_post("/_sandbox/stores", new_store)
    app.router.add_post("/_sandbox/sections/{id}", rename_section)
    return app


def _validate_upload(fields: dict[str, str], filename: str | None, checksum: str) -> web.Response | None:
    """The checks that need no database (the store's existence is checked by the insert)."""
    if filename is None:
        return _error("file", "No file was submitted.")
    input_type = fields.get("input_type")
    if input_type is None:
        return _error("input_type", "This field is required.")
    if input_type not in INPUT_TYPES:
        return _error("input_type", f'"{input_type}" is not a valid choice.')
    store = fields.get("store")
    if store and not store.isdigit():
        return _invalid_pk("store", store)
    given = fields.get("checksum")
    if given and given.lower() != checksum:
        return _error("checksum", "Checksum does not match the uploaded file.")
    return None


def _pk(value: Any) -> int | None:
    """`value` if it can be a primary key (an integer in bigint's range), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
        return value
    return None


_REFERENCES = (("category_id", "category"), ("section_id", "section"), ("store_planogram", "planogramstore"))


async def _validate_action(inst: Instance, payload: dict[str, Any]) -> web.Response | None:
    """DRF's answers, in DRF's order, with every existence check in one query."""
    files = payload.get("files")
    file_ids = [i for i in map(_pk, files) if i is not None] if isinstance(files, list) else []
    refs = {name: _pk(payload.get(name)) for name, _ in _REFERENCES}
    async with inst.pool.connection() as conn:
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
        return _error("store", "This field is required.")
    if not store_ok:
        return _invalid_pk("store", payload["store"])
    if files is None:
        return _error("files", "This field is required.")
    if not isinstance(files, list):
        kind = type(files).__name__
        return _error("files", f'Expected a list of items but got type "{kind}".')
    if not files:
        return _error("files", "This list may not be empty.")
    existing = set(found)
    for file_id in files:
        if _pk(file_id) not in existing:
            return _invalid_pk("files", file_id)
    for (name, _), ok in zip(_REFERENCES, refs_ok, strict=True):
        value = payload.get(name)
        if value is not None and not ok:
            return _invalid_pk(name, value)
    return None


async def _create_scan(
    conn: psycopg.AsyncConnection[Any], payload: dict[str, Any], uid: str | None
) -> dict[str, Any]:
    """Insert the scan, its files in order and the uid's answer in one statement; the summary."""
    cur = await conn.execute(
        f"WITH s AS (INSERT INTO {TABLES['scan']} (store_id, status, has_report, selected_category_id,"
        " provided_values) VALUES (%(store)s, 'pending', false, %(category)s, %(raw)s)"
        " RETURNING id, status, store_id),"
        f" f AS (INSERT INTO {TABLES['scanfile']} (scan_id, file_id, file_type)"
        " SELECT s.id, fu.id, fu.input_type FROM s"
        " CROSS JOIN unnest(%(files)s::bigint[]) WITH ORDINALITY AS u(file_id, n)"
        f" JOIN {TABLES['file']} fu ON fu.id = u.file_id ORDER BY u.n RETURNING id, file_id),"
        " c AS (UPDATE sandbox_client_request SET scan_id = (SELECT id FROM s) WHERE uid = %(uid)s)"
        " SELECT s.id, s.status, s.store_id, ARRAY(SELECT file_id FROM f ORDER BY id) FROM s",
        {"store": payload["store"], "category": payload.get("category_id"),
         "raw": Jsonb({"_raw_data": payload}), "files": payload["files"], "uid": uid},
    )
    row = await cur.fetchone()
    assert row is not None
    return {"id": row[0], "status": row[1], "store": row[2], "files": list(row[3])}


async def _scan_summary(
    conn: psycopg.AsyncConnection[Any], scan_id: int, detail: bool = False
) -> dict[str, Any] | None:
    cur = await conn.execute(
        "SELECT id, status, store_id, created_at, has_report,"
        f" ARRAY(SELECT file_id FROM {TABLES['scanfile']} WHERE scan_id = s.id ORDER BY id)"
        f" FROM {TABLES['scan']} s WHERE id = %s",
        (scan_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    body = {"id": row[0], "status": row[1], "store": row[2], "files": list(row[5])}
    if detail:
        body.update(created_at=row[3].isoformat(), has_report=row[4])
    return body


async def _copy_store(conn: psycopg.AsyncConnection[Any], template: int) -> int:
    """A new empty store with the template's store POGs and their daily compliance."""
    cur = await conn.execute(
        f"INSERT INTO {TABLES['store']} (name) SELECT 'QA Copy Target ' || nextval("
        f"pg_get_serial_sequence('{TABLES['store']}', 'id')) RETURNING id"
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

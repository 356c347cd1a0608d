"""The endpoints of one instance: the platform's (docs/platform.md) and the /_sandbox/ test controls.

`Handlers` holds the instance and has one method per endpoint; `api.ROUTES` says which path
each one answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import uuid
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from aiohttp import web

from scanjobs.sandbox import queries
from scanjobs.sandbox.images import sniff_content_type
from scanjobs.sandbox.instance import Instance, MemoryStorage
from scanjobs.sandbox.multipart import FormReader, MultipartError, boundary_of
from scanjobs.sandbox.validation import (
    busy,
    error,
    invalid_pk,
    not_found,
    request_uid,
    validate_action,
    validate_upload,
)

_SMALL_FILE = 1 << 20  # files up to this size are held in memory (uploads, storage answers); larger stream


def _safe_name(name: str) -> str:
    """A storage file name from an uploaded name: no directories, only tame characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "upload"


def _storage_name(original: str, ctype: str) -> str:
    """The storage name of an upload: tame, and carrying the real type even when the upload's didn't."""
    name = _safe_name(original)
    ext = {"image/png": ".png", "image/jpeg": ".jpg"}.get(ctype, "")
    if ext and not name.lower().endswith((ext, ".jpeg")):
        name += ext
    return name


class _Incoming:
    """An upload's form as it is read: a small file stays in memory, a large one streams to `tmp`."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        # the platform's checksum (its client's `hash_file`): MD5 hex of the bytes, not security
        self.digest = hashlib.md5(usedforsecurity=False)
        self.size = 0
        self.held = bytearray()
        self.spill: BinaryIO | None = None

    async def read(self, form: FormReader) -> None:
        """Read every part: the first `file` part's bytes, and the other parts as text fields."""
        async for part in form.parts():
            if part.name is None:
                continue
            if part.name == "file" and self.filename is None:
                self.filename = part.filename or "upload"
                async for chunk in form.chunks():
                    self._add(chunk)
            else:
                self.fields[part.name] = (await form.read(1 << 20)).decode("utf-8", errors="replace")

    def _add(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        self.size += len(chunk)
        if self.spill is not None:
            self.spill.write(chunk)
            return
        self.held += chunk
        if len(self.held) > _SMALL_FILE:  # streamed on: 20 MB never sit in memory
            self.spill = open(self.tmp, "wb")  # noqa: SIM115 - closed by keep() or discard()
            self.spill.write(self.held)
            del self.held[8:]  # the head is kept to sniff the type

    def keep(self, memory: MemoryStorage, rel: str, path: Path) -> None:
        """Store the file as `rel`: in memory while the budget allows, else at `path`."""
        if self.spill is None:
            if not memory.put(rel, bytes(self.held)):
                with open(path, "wb") as fh:
                    fh.write(self.held)
        else:
            self.spill.close()
            os.replace(self.tmp, path)

    def discard(self) -> None:
        """Remove what was spilled to disk and not kept."""
        if self.spill is not None:
            self.spill.close()
            self.tmp.unlink(missing_ok=True)


class Handlers:
    """One method per endpoint of one instance."""

    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        self.storage_root = inst.storage.resolve()

    def _auth(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme != "Token" or token.strip() not in self.inst.tokens:
            raise web.HTTPUnauthorized(text='{"detail": "Invalid token."}', content_type="application/json")

    def _storage_url(self, rel: str) -> str:
        return f"{self.inst.api_url}/_storage/{quote(rel)}"

    # The platform's endpoints.

    async def token_auth(self, request: web.Request) -> web.Response:
        inst = self.inst
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

    async def file_meta(self, request: web.Request) -> web.Response:
        self._auth(request)
        raw = request.match_info["id"]
        if not raw.isdigit():
            return not_found()
        async with self.inst.pool.connection() as conn:
            row = await queries.file_row(conn, int(raw))
        if row is None:
            return not_found()
        return web.json_response(
            {
                "id": row[0],
                "file": self._storage_url(row[1]),
                "original_filename": row[2],
                "input_type": row[3],
                "size": row[4],
            }
        )

    async def storage(self, request: web.Request) -> web.StreamResponse:
        rel = request.match_info["path"]
        if "\x00" in rel or any(part in ("", ".", "..") for part in rel.split("/")):
            return not_found()  # nothing outside the storage folder
        blob = self.inst.memory.blobs.get(rel)
        if blob is not None:  # answered whole; HTTP lets a server ignore a Range header
            ctype = sniff_content_type(blob[:8]) or "application/octet-stream"
            return web.Response(body=blob, headers={"Content-Type": ctype})
        path = os.path.join(self.storage_root, rel)
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                head = fh.read(_SMALL_FILE if "Range" not in request.headers else 8)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return not_found()
        ctype = sniff_content_type(head[:8]) or "application/octet-stream"
        if len(head) == size:  # a whole small file: one plain response
            return web.Response(body=head, headers={"Content-Type": ctype})
        # FileResponse streams from disk and implements Range (206 + Content-Range).
        return web.FileResponse(path, headers={"Content-Type": ctype})

    async def upload(self, request: web.Request) -> web.Response:
        inst = self.inst
        self._auth(request)
        boundary = boundary_of(request.headers.get("Content-Type", ""))
        if boundary is None:
            return error("file", "No file was submitted.")
        incoming = _Incoming(inst.storage / "tmp" / uuid.uuid4().hex)
        try:
            form = FormReader(request.content.read, boundary)
            try:
                await incoming.read(form)
            except MultipartError as exc:
                return web.json_response({"detail": f"Multipart form parse error - {exc}"}, status=400)
            checksum = incoming.digest.hexdigest()
            invalid = validate_upload(incoming.fields, incoming.filename, checksum)
            if invalid is not None:
                return invalid
            uid, invalid = request_uid(request.headers)
            if invalid is not None:
                return invalid
            if uid is not None:
                # Like a create's (the platform's client sends a uid with every POST): the same
                # uid again answers the file stored the first time, the body sent again unread.
                async with inst.pool.connection() as conn:
                    forget = inst.config.forget_uids_after
                    if not await queries.claim_request(conn, "upload", uid, forget):
                        file_id = await queries.claimed_answer(conn, "upload", uid)
                        row = None if file_id is None else await queries.file_row(conn, file_id)
                        return busy() if row is None else self._uploaded(*row)
            try:
                return await self._store_upload(incoming, checksum, uid)
            except BaseException:
                if uid is not None:
                    async with inst.pool.connection() as conn:
                        await queries.release_request(conn, "upload", uid)
                raise
        finally:
            incoming.discard()

    async def _store_upload(self, incoming: _Incoming, checksum: str, uid: str | None) -> web.Response:
        """Keep a valid upload: its file row (settling `uid`'s claim) and its bytes."""
        inst = self.inst
        assert incoming.filename is not None
        original = incoming.filename.replace("\\", "/").rsplit("/", 1)[-1]
        ctype = sniff_content_type(bytes(incoming.held[:8])) or "application/octet-stream"
        input_type = incoming.fields["input_type"]
        store = incoming.fields.get("store") or None
        async with inst.pool.connection() as conn:
            row = await queries.insert_file(
                conn,
                name=_storage_name(original, ctype),
                original=original,
                input_type=input_type,
                ctype=ctype,
                size=incoming.size,
                checksum=checksum,
                store=store,
                uid=uid,
            )
            if row is None:
                if uid is not None:
                    await queries.release_request(conn, "upload", uid)
                return invalid_pk("store", store)
            file_id, rel = row
            try:
                incoming.keep(inst.memory, rel, inst.storage / rel)
            except BaseException:
                await queries.delete_file(conn, file_id)
                raise
        inst.stats.files_uploaded += 1
        if incoming.fields.get("checksum"):
            inst.stats.checksums_verified += 1
        return self._uploaded(file_id, rel, original, input_type, incoming.size)

    def _uploaded(self, file_id: int, rel: str, original: str, input_type: str, size: int) -> web.Response:
        """The platform's answer to an upload (the same again to a repeated uid)."""
        return web.json_response(
            {
                "id": file_id,
                "file": self._storage_url(rel),
                "original_filename": original,
                "input_type": input_type,
                "size": size,
            },
            status=201,
        )

    async def create_action(self, request: web.Request) -> web.Response:
        inst = self.inst
        self._auth(request)
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return web.json_response(
                {"non_field_errors": ["Invalid data. Expected a dictionary."]}, status=400
            )
        invalid = await validate_action(inst.pool, payload)
        if invalid is not None:
            return invalid
        uid, invalid = request_uid(request.headers)
        if invalid is not None:
            return invalid
        if uid:
            async with inst.pool.connection() as conn:
                if not await queries.claim_request(conn, "create", uid, inst.config.forget_uids_after):
                    scan_id = await queries.claimed_answer(conn, "create", uid)
                    if scan_id is None:
                        return busy()
                    return web.json_response(await queries.scan_summary(conn, scan_id), status=201)
        try:
            await asyncio.sleep(0.02)  # the real platform does work here; widens the race
            async with inst.pool.connection() as conn:
                body = await queries.create_scan(conn, payload, uid)
        except BaseException:
            if uid:
                async with inst.pool.connection() as conn:
                    await queries.release_request(conn, "create", uid)
            raise
        scan_id = body["id"]
        inst.stats.scans_created += 1
        if inst.process is not None:
            task = asyncio.create_task(inst.process(inst, scan_id))
            inst.tasks.add(task)
            task.add_done_callback(inst.tasks.discard)
        return web.json_response(body, status=201)

    async def action_detail(self, request: web.Request) -> web.Response:
        self._auth(request)
        raw = request.match_info["id"]
        if not raw.isdigit():
            return not_found()
        async with self.inst.pool.connection() as conn:
            body = await queries.scan_summary(conn, int(raw), detail=True)
        if body is None:
            return not_found()
        return web.json_response(body)

    # Test controls under /_sandbox/: never faulted nor counted (see faults.py).

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.inst.stats.as_dict())

    async def stats_reset(self, request: web.Request) -> web.Response:
        for peer in self.inst.peers:
            peer.stats.reset()
        return web.json_response(self.inst.stats.as_dict())

    async def config(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                self.inst.config.update(await request.json())
            except (ValueError, TypeError, AttributeError) as exc:
                return web.json_response({"detail": str(exc)}, status=400)
        return web.json_response(self.inst.config.as_dict())

    async def new_store(self, request: web.Request) -> web.Response:
        async with self.inst.pool.connection() as conn, conn.transaction():
            store_id = await queries.copy_store(conn, self.inst.template_store_id)
        return web.json_response({"id": store_id}, status=201)

    async def rename_section(self, request: web.Request) -> web.Response:
        # Any text a real platform could hold (hostile names for download tests).
        raw = request.match_info["id"]
        name = (await request.json()).get("name")
        if not raw.isdigit() or not isinstance(name, str):
            return web.json_response({"detail": "give a section id and a JSON {name}"}, status=400)
        async with self.inst.pool.connection() as conn, conn.transaction():
            renamed = await queries.rename_section(conn, int(raw), name)
        if renamed != 1:
            return not_found()
        return web.json_response({"id": int(raw), "name": name})

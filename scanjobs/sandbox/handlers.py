"""The endpoints of one instance: the platform's (docs/platform.md) and the /_sandbox/ test controls.

`Handlers` holds the instance and has one method per endpoint; `api.ROUTES` says which path
each one answers.
"""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
import time
import uuid
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode

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
_LINK_DATE = "%Y%m%dT%H%M%SZ"  # X-Amz-Date, as in an S3 presigned link


def _storage_error(code: str, message: str) -> web.Response:
    """S3's refusal of a link: 403 with its XML error."""
    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    body = f"{head}<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return web.Response(status=403, text=body, content_type="application/xml")


def _safe_name(name: str) -> str:
    """A storage file name from an uploaded name: no directories, only tame characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "upload"


def _time(value: dt.datetime | None) -> str | None:
    """A time as Django REST framework writes it: ISO 8601, UTC as `Z`."""
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


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

    def _signature(self, rel: str, date: str, expires: str) -> str:
        message = f"{rel}\n{date}\n{expires}".encode()
        return hmac.new(self.inst.link_key, message, hashlib.sha256).hexdigest()

    def _storage_url(self, rel: str, *, expired: bool = False) -> str:
        """A signed link to a stored file, good for `link_lifetime` seconds (none if `expired`)."""
        lifetime = 0 if expired else max(0, int(self.inst.config.link_lifetime))
        date = time.strftime(_LINK_DATE, time.gmtime())
        query = {
            "X-Amz-Date": date,
            "X-Amz-Expires": str(lifetime),
            "X-Amz-Signature": self._signature(rel, date, str(lifetime)),
        }
        return f"{self.inst.api_url}/_storage/{quote(rel)}?{urlencode(query)}"

    def _link_refusal(self, request: web.Request, rel: str) -> web.Response | None:
        """S3's answer to a link that is not signed by us, or has expired; None for a good one."""
        date = request.query.get("X-Amz-Date", "")
        expires = request.query.get("X-Amz-Expires", "")
        given = request.query.get("X-Amz-Signature", "")
        if not (date and expires and given):
            return _storage_error("AccessDenied", "Access Denied")
        if not hmac.compare_digest(given, self._signature(rel, date, expires)):
            return _storage_error(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        # Signed by us, so both are as _storage_url wrote them.
        issued = calendar.timegm(time.strptime(date, _LINK_DATE))
        if time.time() >= issued + int(expires):
            return _storage_error("AccessDenied", "Request has expired")
        return None

    # The platform's endpoints.

    async def token_auth(self, request: web.Request) -> web.Response:
        inst = self.inst
        try:
            body = await request.json()
        except ValueError:
            body = dict(await request.post())
        if not isinstance(body, dict):
            body = {}
        user = body.get("username")
        if user not in (inst.username, inst.two_factor_user) or body.get("password") != inst.password:
            return web.json_response(
                {"non_field_errors": ["Unable to log in with provided credentials."]}, status=400
            )
        if user == inst.two_factor_user:
            # The platform's client looks for "2FA" or "code" in this answer, asks for the code
            # that was emailed, and posts again with `verification_code`.
            code = body.get("verification_code")
            if code is None:
                inst.codes_sent[user] = f"{secrets.randbelow(10**6):06d}"
                return web.json_response(
                    {
                        "non_field_errors": [
                            "2FA is enabled for this account: enter the verification code sent to your email."
                        ]
                    },
                    status=400,
                )
            sent = inst.codes_sent.get(user)
            if sent is None or not isinstance(code, str) or not secrets.compare_digest(code, sent):
                return web.json_response(
                    {"verification_code": ["Invalid or expired verification code."]}, status=400
                )
            del inst.codes_sent[user]  # a code is good once
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
        config = self.inst.config
        expired = config.expired_links >= 1
        if expired:
            config.expired_links -= 1
        return web.json_response(
            {
                "id": row[0],
                "file": self._storage_url(row[1], expired=expired),
                "original_filename": row[2],
                "input_type": row[3],
                "size": row[4],
            }
        )

    async def storage(self, request: web.Request) -> web.StreamResponse:
        rel = request.match_info["path"]
        if "\x00" in rel or any(part in ("", ".", "..") for part in rel.split("/")):
            return not_found()  # nothing outside the storage folder
        refusal = self._link_refusal(request, rel)
        if refusal is not None:
            return refusal
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
        """A scan as the platform's client reads it (its renderers and copy commands)."""
        self._auth(request)
        raw = request.match_info["id"]
        if not raw.isdigit():
            return not_found()
        async with self.inst.pool.connection() as conn:
            scan = await queries.scan_detail(conn, int(raw))
        if scan is None:
            return not_found()
        payload: dict[str, Any] = scan["payload"] if isinstance(scan["payload"], dict) else {}
        store = {"id": scan["store_id"], "custom_id": scan["custom_id"], "name": scan["store_name"]}
        return web.json_response(
            {
                "id": scan["id"],
                "status": scan["status"],
                "store": store,
                "store_id": scan["store_id"],
                "store_name": scan["store_name"],
                "input_type": payload.get("input_type", "image"),
                "inputs": [
                    {"id": file_id, "file": self._storage_url(rel)} for file_id, rel in scan["inputs"]
                ],
                "created": _time(scan["created"]),
                "user": {"id": self.inst.user_id, "username": self.inst.username},
                "store_planogram_id": payload.get("store_planogram") or scan["mapped_store_planogram"],
                "aisle": payload.get("aisle"),
                "section": payload.get("section"),
                "processing_start_time": _time(scan["processing_start_time"]),
                "processing_finish_time": _time(scan["processing_finish_time"]),
                "last_requeue": _time(scan["last_requeue"]),
            }
        )

    # Test controls under /_sandbox/: never faulted nor counted (see faults.py).

    async def outbox(self, request: web.Request) -> web.Response:
        # What the platform would have emailed: the last verification code of each account.
        return web.json_response({"verification_codes": dict(self.inst.codes_sent)})

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

"""Thread-safe client of the platform HTTP API: login, files, upload, scan create and detail.

The session (token, attempts, retries, errors) is session.py; a new platform call goes here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit, urlunsplit

from requests.utils import requote_uri

from scanjobs.errors import PermanentError, TransientError
from scanjobs.platform.http import Response, TransportError
from scanjobs.platform.multipart import CHUNK_SIZE, MultipartBody
from scanjobs.platform.retry import RetryableFailure, call_with_retry
from scanjobs.platform.session import BODY_KEEP, NOT_RESENT, ApiSession, Slot, Unauthorized

__all__ = ["PlatformAPI", "FileMeta", "DownloadResult", "Slot"]


@dataclass(frozen=True, slots=True)
class FileMeta:
    """A platform file: its storage `url` (absolute), name and size when the platform gives them."""

    id: int
    url: str
    original_filename: str | None
    size: int | None


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """What download() wrote: byte count, sha256 and MD5 hex of the bytes, and the Content-Type.

    MD5 is the platform's own checksum of a file (its client's `hash_file`), sent with an upload.
    """

    bytes: int
    sha256: str
    content_type: str | None
    md5: str


# What storage answers to a link it will not honour: an S3 or Azure link past its expiry (403),
# or a signature it does not take (401/403). The metadata gives a fresh link.
LINK_REFUSED = frozenset({401, 403})


def _strip_query(url: str) -> str:
    # Signed storage URLs carry credentials in the query string: never show it.
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class PlatformAPI(ApiSession):
    """The HTTP API of one platform instance. Safe to share between threads."""

    def file_meta(self, file_id: int, *, slot: Slot | None = None) -> FileMeta:
        """GET /api/v1/master-data/file-upload/{id}/."""
        data = self._api_call(
            "GET", f"/api/v1/master-data/file-upload/{int(file_id)}/", slot=slot, hedge="file metadata"
        )
        if not isinstance(data, dict) or not data.get("file"):
            raise PermanentError(f"file {file_id}: the platform gave no download URL", body=None)
        size = data.get("size")
        return FileMeta(
            id=int(data.get("id", file_id)),
            url=urljoin(self.api_url + "/", str(data["file"])),
            original_filename=data.get("original_filename") or None,
            size=int(size) if isinstance(size, (int, str)) and str(size).isdigit() else None,
        )

    def download_file(
        self, file_id: int, dest: BinaryIO, *, slot: Slot | None = None
    ) -> tuple[FileMeta, DownloadResult]:
        """A platform file's metadata, then its bytes streamed into `dest` (see `download`).

        Storage links are signed and expire: a link refused (401/403) gets the metadata fetched
        again, once, for a fresh link, and the download tried with it; a fresh link refused too
        fails the file for good.
        """
        for fresh in (False, True):
            meta = self.file_meta(file_id, slot=slot)
            try:
                return meta, self.download(meta.url, dest, expected_size=meta.size, slot=slot)
            except PermanentError as exc:
                if exc.status not in LINK_REFUSED:
                    raise
                if fresh:
                    message = f"{exc} (a fresh link from the file's metadata was refused too)"
                    raise PermanentError(message, status=exc.status, body=exc.body) from exc
        raise AssertionError("the second link either worked or raised")

    def download(
        self, url: str, dest: BinaryIO, *, expected_size: int | None = None, slot: Slot | None = None
    ) -> DownloadResult:
        """Stream a storage URL into `dest` (rewound and truncated on each attempt).

        `expected_size` (the platform's size of the file, FileMeta.size) and the answer's
        Content-Length are checked against the bytes received: an answer cut short, or running on
        past the size (never read beyond it), is a failed attempt, retried. The known size also
        extends each attempt's wall-clock limit. No Authorization header: the API token must never
        reach a storage host. `slot` is held during each attempt, not while waiting to retry.
        """
        url = requote_uri(url)  # the platform's URL as given; spaces and the like are quoted
        shown = _strip_query(url)
        call = f"GET {shown}"

        def attempt() -> DownloadResult:
            with slot or contextlib.nullcontext():
                return fetch()

        def fetch() -> DownloadResult:
            dest.seek(0)
            dest.truncate()
            # identity: Content-Length then counts the bytes we store, not a compressed form
            response = self._send(
                "GET",
                url,
                idempotent=True,
                stream=True,
                headers={"Accept-Encoding": "identity"},
                size=expected_size,
                hedge="storage",
            )
            with response:
                self._check_storage(response, call)
                declared = response.declared_length
                if declared is not None and expected_size is not None and declared != expected_size:
                    raise RetryableFailure(f"the answer has {declared} bytes, the file {expected_size}")
                expected = expected_size if declared is None else declared
                digest = hashlib.sha256()
                md5 = hashlib.md5(usedforsecurity=False)  # a checksum, not security
                count = 0
                try:
                    for chunk in response.iter_content(CHUNK_SIZE, max_bytes=expected):
                        dest.write(chunk)
                        digest.update(chunk)
                        md5.update(chunk)
                        count += len(chunk)
                except TransportError as exc:
                    raise RetryableFailure(exc.reason) from exc
                if expected is not None and count != expected:
                    # With no Content-Length an answer ends where its connection does: short is cut.
                    raise RetryableFailure(f"short body: {count} of {expected} bytes")
                dest.flush()
                return DownloadResult(
                    bytes=count,
                    sha256=digest.hexdigest(),
                    content_type=response.headers.get("Content-Type"),
                    md5=md5.hexdigest(),
                )

        parts = urlsplit(url)
        return call_with_retry(
            attempt,
            policy=self._retry,
            call=call,
            target=f"{parts.scheme}://{parts.netloc}",
            on_retry=self._on_retry,
        )

    def _check_storage(self, response: Response, call: str) -> None:
        try:
            self._check(response, call)
        except Unauthorized:
            # Storage gets no token, so a 401 is the URL's own problem (expired signature).
            raise PermanentError(
                f"401 Unauthorized from {call}", status=401, body=response.text[:BODY_KEEP]
            ) from None

    def upload(
        self,
        fileobj: BinaryIO,
        filename: str,
        *,
        input_type: str = "image",
        store: int | None = None,
        checksum: str | None = None,
        content_type: str | None = None,
        request_uid: str | None = None,
        slot: Slot | None = None,
        before_send: Callable[[], None] | None = None,
        on_stored: Callable[[int], None] | None = None,
    ) -> int:
        """Multipart POST /api/v4/processing/upload/, streamed from `fileobj`; the new file id.

        `checksum` is the MD5 hex of the bytes, what the platform's client sends
        (DownloadResult.md5 of the source file). `request_uid` goes out as
        REB-CLIENT-REQUEST-UID, as the client sends one with every POST; that the platform
        answers a repeated uid with the file it stored first is not confirmed, so it changes
        nothing below: an upload sent whole is still never sent again by this call.

        Not idempotent: retried only when the platform cannot have stored it: a failure before
        the whole body was sent, or a 424/429/503. Once the body was sent, a lost or late answer
        or a 502/504 (the platform may have stored the file) is a TransientError at once, never a
        second upload: the caller's intent stays unsettled, for its next run to look for the file.
        `before_send` (the caller's record of its intent) and `on_stored` (its record of the new
        id) run while `slot` is held.
        """
        fields = {"input_type": input_type}
        if store is not None:
            fields["store"] = str(int(store))
        if checksum:
            fields["checksum"] = checksum

        def body() -> tuple[Any, dict[str, str]]:
            multipart = MultipartBody(fileobj, filename, content_type or "application/octet-stream", fields)
            return multipart, {"Content-Type": multipart.content_type, "Content-Length": str(len(multipart))}

        call = "POST /api/v4/processing/upload/"
        data = self._api_call(
            "POST",
            "/api/v4/processing/upload/",
            idempotent=False,
            headers=None if request_uid is None else {"REB-CLIENT-REQUEST-UID": request_uid},
            body_factory=body,
            slot=slot,
            before_send=before_send,
            on_answer=None if on_stored is None else lambda answer: on_stored(self._stored_id(answer, call)),
        )
        return self._stored_id(data, call)

    def create_scan(self, payload: dict[str, Any], request_uid: str, *, slot: Slot | None = None) -> int:
        """POST /api/v4/processing/actions/ with REB-CLIENT-REQUEST-UID; the new scan id.

        The uid makes the create idempotent, so every transient failure (read timeouts too) is
        retried with the same uid: the platform returns the first scan, never a second one.
        """
        data = self._api_call(
            "POST",
            "/api/v4/processing/actions/",
            json_body=payload,
            headers={"REB-CLIENT-REQUEST-UID": request_uid},
            slot=slot,
        )
        return self._new_id(data, "POST /api/v4/processing/actions/")

    def scan_detail(self, scan_id: int) -> dict[str, Any]:
        """GET /api/v4/processing/actions/{id}/ (includes `status`)."""
        data = self._api_call("GET", f"/api/v4/processing/actions/{int(scan_id)}/")
        if not isinstance(data, dict):
            raise PermanentError(f"scan {scan_id}: unexpected answer {str(data)[:200]}")
        return data

    @classmethod
    def _stored_id(cls, data: Any, call: str) -> int:
        """The new id in an upload's 2xx answer: without one, the file may still be stored, so the
        upload stays unsettled (TransientError) for the next run to look for, and is not resent."""
        try:
            return cls._new_id(data, call)
        except PermanentError as exc:
            raise TransientError(f"{exc}; {NOT_RESENT}") from exc

    @staticmethod
    def _new_id(data: Any, call: str) -> int:
        try:
            return int(data["id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PermanentError(f"{call}: the answer has no id: {json.dumps(data)[:300]}") from exc

"""Thread-safe client of the platform HTTP API: login, files, upload, scan create and detail."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit, urlunsplit

from requests.utils import requote_uri

from scanjobs.errors import AuthError, PermanentError, TransientError, UnreachableError
from scanjobs.platform.http import (
    ConnectFailed,
    ReadTimedOut,
    Response,
    TooManyRedirects,
    Transport,
    TransportError,
)
from scanjobs.platform.retry import (
    OnRetry,
    RetryableFailure,
    RetryPolicy,
    Timeouts,
    call_with_retry,
    parse_retry_after,
)

__all__ = ["PlatformAPI", "FileMeta", "DownloadResult", "Slot"]

# What a call holds while a request is on the wire, and releases while it waits to retry: a
# semaphore of the endpoint's workers makes them count requests, not threads asleep in backoff.
Slot = contextlib.AbstractContextManager[Any]

# 424: the same request uid is still being processed; 429: rate limit (with Retry-After).
TRANSIENT_STATUSES = frozenset({424, 429, 502, 503, 504})
CHUNK_SIZE = 256 * 1024
_BODY_KEEP = 2000  # characters of an error body kept on PermanentError.body


@dataclass(frozen=True, slots=True)
class FileMeta:
    """A platform file: its storage `url` (absolute), name and size when the platform gives them."""

    id: int
    url: str
    original_filename: str | None
    size: int | None


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """What download() wrote: byte count, sha256 hex of the bytes, and the Content-Type."""

    bytes: int
    sha256: str
    content_type: str | None


class _Unauthorized(Exception):
    """A 401 on a token call: the caller re-logs in once and repeats."""


class _MultipartBody:
    """A multipart/form-data body streamed from a file object, with a known length.

    A form library would read the file into memory; this reads it chunk by chunk while sending,
    and `__len__` gives the Content-Length, so the body is not sent chunked (which some upload
    proxies refuse).
    """

    def __init__(
        self,
        fileobj: BinaryIO,
        filename: str,
        content_type: str,
        fields: dict[str, str],
    ) -> None:
        self.boundary = uuid.uuid4().hex
        parts = []
        for name, value in fields.items():
            parts.append(
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            )
        parts.append(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{_quote_filename(filename)}"\r\nContent-Type: {content_type}\r\n\r\n'
        )
        self._head = "".join(parts).encode("utf-8")
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        fileobj.seek(0, 2)
        self._file_size = fileobj.tell()
        fileobj.seek(0)
        self._file = fileobj
        self._chunks = self._generate()
        self._pending = b""

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self._head) + self._file_size + len(self._tail)

    def _generate(self) -> Iterator[bytes]:
        yield self._head
        while chunk := self._file.read(CHUNK_SIZE):
            yield chunk
        yield self._tail

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def read(self, size: int = -1) -> bytes:
        """File-like read so urllib3 pulls the body at its own block size."""
        while size < 0 or len(self._pending) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._pending += chunk
        if size < 0:
            out, self._pending = self._pending, b""
        else:
            out, self._pending = self._pending[:size], self._pending[size:]
        return out


def _quote_filename(name: str) -> str:
    # A quote or line break in a filename would end the header early and corrupt the part.
    return name.replace("\\", "_").replace('"', "_").replace("\r", "_").replace("\n", "_")


def _strip_query(url: str) -> str:
    # Signed storage URLs carry credentials in the query string: never show it.
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _render_json(value: Any) -> str:
    """DRF error bodies, compactly: {"files": ["Invalid pk"]} -> 'files: Invalid pk'."""
    if isinstance(value, dict):
        items = []
        for key, sub in value.items():
            text = _render_json(sub)
            items.append(text if key in ("detail", "non_field_errors") else f"{key}: {text}")
        return "; ".join(items)
    if isinstance(value, list):
        return "; ".join(_render_json(v) for v in value)
    return str(value)


def _render_body(response: Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return " ".join(response.text.split())[:300]
    return _render_json(data)


class PlatformAPI:
    """The HTTP API of one platform instance. Safe to share between threads."""

    def __init__(
        self,
        api_url: str,
        username: str,
        password: str,
        *,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, so a shared default is safe
        timeouts: Timeouts = Timeouts(),  # noqa: B008
        pool_size: int = 32,
        on_retry: OnRetry | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.username = username
        self._password = password
        self._retry = retry
        self._timeouts = timeouts
        self._on_retry = on_retry
        self._token: str | None = None
        self._login_lock = threading.Lock()
        self._http = Transport(pool_size=pool_size)

    def __repr__(self) -> str:
        return f"PlatformAPI({self.api_url!r}, username={self.username!r})"

    def __enter__(self) -> PlatformAPI:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- helpers -------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        for secret in (self._password, self._token):
            if secret:
                text = text.replace(secret, "***")
        return text

    @property
    def _timeout(self) -> tuple[float, float]:
        return (self._timeouts.connect, self._timeouts.read)

    def _send(
        self,
        method: str,
        url: str,
        *,
        retry_read_timeout: bool,
        headers: dict[str, str] | None = None,
        json_body: Any = None,
        body: Any = None,
        stream: bool = False,
    ) -> Response:
        """One attempt: a response, or RetryableFailure for what the caller may retry."""
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        try:
            return self._http.request(
                method, url, headers=headers, body=body, timeout=self._timeout, stream=stream
            )
        except ConnectFailed as exc:
            raise RetryableFailure(exc.reason, connection=True) from exc
        except TooManyRedirects as exc:
            raise PermanentError(f"{method} {urlsplit(url).path}: {exc.reason}") from exc
        except TransportError as exc:  # no answer in time, or the answer broke off
            if not retry_read_timeout:
                # The server may have acted on the request: repeating it could duplicate.
                raise TransientError(
                    f"{method} {urlsplit(url).path}: {exc.reason}"
                    + (
                        ", not retried because the call is not idempotent"
                        if isinstance(exc, ReadTimedOut)
                        else ""
                    )
                ) from exc
            raise RetryableFailure(exc.reason) from exc

    def _check(self, response: Response, call: str) -> None:
        """Raise for any non-2xx: retryable, re-login, or permanent with the platform's words."""
        status = response.status_code
        if status < 400:
            return
        if status in TRANSIENT_STATUSES:
            raise RetryableFailure(
                f"{status} {response.reason}",
                status=status,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if status == 401:
            raise _Unauthorized()
        # 500 and other 5xx are platform bugs for this request: retrying the same input will
        # not fix them, so they fail the item at once like a 4xx (only 502/503/504 are transient).
        body = self._redact(response.text[:_BODY_KEEP])
        message = self._redact(f"{status} {response.reason} from {call}: {_render_body(response)}")
        raise PermanentError(message, status=status, body=body)

    def _api_call(
        self,
        method: str,
        path: str,
        *,
        retry_read_timeout: bool = True,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        body_factory: Callable[[], tuple[Any, dict[str, str]]] | None = None,
        slot: Slot | None = None,
        before_send: Callable[[], None] | None = None,
        on_answer: Callable[[Any], None] | None = None,
    ) -> Any:
        """A token call with retries, one re-login on 401, and the JSON answer returned.

        `body_factory` builds each attempt's body and its headers (a fresh upload stream each time).
        `slot` (a semaphore, say) is held during each attempt, not while waiting to retry.
        `before_send` runs inside the slot before each attempt is sent, and `on_answer` inside the
        slot with the accepted answer: what they record happens in the order the requests go out.
        """
        url = f"{self.api_url}{path}"
        call = f"{method} {path}"
        for relogin in (True, False):
            token = self._ensure_token()

            def attempt(token: str = token) -> Any:
                body, extra = body_factory() if body_factory else (None, {})
                with slot or contextlib.nullcontext():
                    if before_send is not None:
                        before_send()
                    response = self._send(
                        method,
                        url,
                        retry_read_timeout=retry_read_timeout,
                        headers={**(headers or {}), **extra, "Authorization": f"Token {token}"},
                        json_body=json_body,
                        body=body,
                    )
                    self._check(response, call)
                    try:
                        data = response.json()
                    except ValueError as exc:
                        raise PermanentError(
                            f"{call}: answer is not JSON: {_render_body(response)}",
                            status=response.status_code,
                            body=response.text[:_BODY_KEEP],
                        ) from exc
                    if on_answer is not None:
                        on_answer(data)
                return data

            try:
                return call_with_retry(
                    attempt,
                    policy=self._retry,
                    call=call,
                    target=self.api_url,
                    on_retry=self._on_retry,
                )
            except _Unauthorized:
                if not relogin:
                    break
                self._relogin(token)
        raise AuthError(
            f"{call} refused with 401 Unauthorized even after logging in again as "
            f"{self.username!r} at {self.api_url}"
        )

    # -- authentication ------------------------------------------------------------------------

    def _ensure_token(self) -> str:
        token = self._token
        if token is None:
            with self._login_lock:
                if self._token is None:
                    self._login_locked()
                token = self._token
        assert token is not None
        return token

    def _relogin(self, stale_token: str) -> None:
        # Twenty threads seeing the same 401 must cause one login: only the first one to get the
        # lock still sees the stale token; the rest find a fresh one and simply retry.
        with self._login_lock:
            if self._token == stale_token:
                self._login_locked()

    def login(self) -> None:
        """Get a token. AuthError at once if refused; UnreachableError if the API can't answer."""
        with self._login_lock:
            self._login_locked()

    def _login_locked(self) -> None:
        path = "/api/v4/token-auth/"
        url = f"{self.api_url}{path}"

        def attempt() -> str:
            response = self._send(
                "POST",
                url,
                retry_read_timeout=True,  # login creates nothing: safe to repeat
                json_body={"username": self.username, "password": self._password},
            )
            status = response.status_code
            if status in (400, 401, 403):
                raise AuthError(
                    self._redact(
                        f"login as {self.username!r} at {self.api_url} refused "
                        f"({status} {response.reason}): {_render_body(response)}"
                    ),
                    hint="check the username and password of this instance",
                )
            if status >= 500 or status in TRANSIENT_STATUSES:
                raise RetryableFailure(
                    f"{status} {response.reason}",
                    status=status,
                    retry_after=parse_retry_after(response.headers.get("Retry-After")),
                    connection=True,  # no login means no platform: unreachable, not per item
                )
            if status >= 400:
                raise UnreachableError(
                    self._redact(
                        f"cannot log in at {url}: {status} {response.reason}: {_render_body(response)}"
                    ),
                    hint="check api_url of this instance",
                )
            try:
                token = response.json()["token"]
            except (ValueError, KeyError, TypeError) as exc:
                raise UnreachableError(f"cannot log in at {url}: the answer has no token") from exc
            return str(token)

        self._token = call_with_retry(
            attempt,
            policy=self._retry,
            call=f"POST {path}",
            target=self.api_url,
            on_retry=self._on_retry,
        )

    # -- calls ---------------------------------------------------------------------------------

    def file_meta(self, file_id: int, *, slot: Slot | None = None) -> FileMeta:
        """GET /api/v1/master-data/file-upload/{id}/."""
        data = self._api_call("GET", f"/api/v1/master-data/file-upload/{int(file_id)}/", slot=slot)
        if not isinstance(data, dict) or not data.get("file"):
            raise PermanentError(f"file {file_id}: the platform gave no download URL", body=None)
        size = data.get("size")
        return FileMeta(
            id=int(data.get("id", file_id)),
            url=urljoin(self.api_url + "/", str(data["file"])),
            original_filename=data.get("original_filename") or None,
            size=int(size) if isinstance(size, (int, str)) and str(size).isdigit() else None,
        )

    def download(self, url: str, dest: BinaryIO, *, slot: Slot | None = None) -> DownloadResult:
        """Stream a storage URL into `dest` (rewound and truncated on each attempt).

        No Authorization header: the API token must never reach a storage host. `slot` is held
        during each attempt, not while waiting to retry.
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
                retry_read_timeout=True,
                stream=True,
                headers={"Accept-Encoding": "identity"},
            )
            with response:
                self._check_storage(response, call)
                digest = hashlib.sha256()
                count = 0
                try:
                    for chunk in response.iter_content(CHUNK_SIZE):
                        dest.write(chunk)
                        digest.update(chunk)
                        count += len(chunk)
                except TransportError as exc:
                    raise RetryableFailure(f"body cut after {count} bytes: {exc.reason}") from exc
                expected = response.headers.get("Content-Length")
                if expected and expected.isdigit() and int(expected) != count:
                    raise RetryableFailure(f"short body: {count} of {expected} bytes")
                dest.flush()
                return DownloadResult(
                    bytes=count,
                    sha256=digest.hexdigest(),
                    content_type=response.headers.get("Content-Type"),
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
        except _Unauthorized:
            # Storage gets no token, so a 401 is the URL's own problem (expired signature).
            raise PermanentError(
                f"401 Unauthorized from {call}", status=401, body=response.text[:_BODY_KEEP]
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
        slot: Slot | None = None,
        before_send: Callable[[], None] | None = None,
        on_stored: Callable[[int], None] | None = None,
    ) -> int:
        """Multipart POST /api/v4/processing/upload/, streamed from `fileobj`; the new file id.

        Not idempotent: retried on 424/429/502/503/504 and on failures to connect or send, never
        after a read timeout (the file may exist by then). `before_send` (the caller's record of
        its intent) and `on_stored` (its record of the new id) run while `slot` is held.
        """
        fields = {"input_type": input_type}
        if store is not None:
            fields["store"] = str(int(store))
        if checksum:
            fields["checksum"] = checksum

        def body() -> tuple[Any, dict[str, str]]:
            multipart = _MultipartBody(fileobj, filename, content_type or "application/octet-stream", fields)
            return multipart, {"Content-Type": multipart.content_type, "Content-Length": str(len(multipart))}

        call = "POST /api/v4/processing/upload/"
        data = self._api_call(
            "POST",
            "/api/v4/processing/upload/",
            retry_read_timeout=False,
            body_factory=body,
            slot=slot,
            before_send=before_send,
            on_answer=None if on_stored is None else lambda answer: on_stored(self._new_id(answer, call)),
        )
        return self._new_id(data, call)

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

    @staticmethod
    def _new_id(data: Any, call: str) -> int:
        try:
            return int(data["id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PermanentError(f"{call}: the answer has no id: {json.dumps(data)[:300]}") from exc

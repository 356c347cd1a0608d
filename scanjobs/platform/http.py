"""HTTP for the platform client: requests' pools and settings, without requests' per-call work.

requests decides how to reach a host (proxy from the environment, CA bundle, client certificate)
and its HTTPAdapter keeps urllib3 connection pools. It then spends more CPU per call than
urllib3 itself (merging settings and cookies, preparing and re-parsing the URL, building a
Response): with tens of thousands of small calls that was a quarter of a copy's CPU. `Transport`
asks requests once per scheme and host, keeps the pool it chose, and sends each call straight
to it, as HTTPAdapter.send does.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, cast
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import requote_uri, select_proxy
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
)

from scanjobs import __version__

__all__ = ["Transport", "Response", "TransportError", "ConnectFailed", "ReadTimedOut", "TooManyRedirects"]

USER_AGENT = f"scanjobs/{__version__}"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5


class TransportError(Exception):
    """No usable answer: `reason` says why in a few words (never a URL's query string)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConnectFailed(TransportError):
    """No connection (refused, DNS, TLS, connect timeout), or it broke before any answer."""


class ReadTimedOut(TransportError):
    """Sent, but no answer in time: the server may have acted on the request."""


class TooManyRedirects(TransportError):
    """A GET redirected more than MAX_REDIRECTS times: a loop, which no retry mends."""


def _cause(exc: BaseException) -> str:
    """'Connection refused', not urllib3's nested object reprs."""
    inner: Any = getattr(exc, "reason", None) or exc
    text = re.sub(r"<[^>]*>:?\s*", "", str(inner)).strip(" ()'\"")
    return f"{type(inner).__name__}: {text}" if text else type(inner).__name__


class Response:
    """What the platform answered: status, reason, headers, and the body read once."""

    __slots__ = ("status_code", "reason", "headers", "_raw", "_content")

    def __init__(self, raw: urllib3.BaseHTTPResponse) -> None:
        self._raw = raw
        self.status_code: int = raw.status
        self.reason: str = raw.reason or ""
        self.headers: Mapping[str, str] = raw.headers  # case-insensitive
        self._content: bytes | None = None

    @property
    def content(self) -> bytes:
        """The whole (decoded) body; TransportError if the connection breaks while reading it."""
        if self._content is None:
            try:
                self._content = self._raw.read(decode_content=True)
            except (HTTPError, OSError) as exc:
                raise TransportError(f"body cut: {_cause(exc)}") from exc
            finally:
                self._raw.release_conn()
        return self._content

    @property
    def text(self) -> str:
        match = re.search(r"charset=\"?([\w.:-]+)", self.headers.get("Content-Type", ""))
        encoding = match.group(1) if match else "utf-8"
        try:
            return self.content.decode(encoding, errors="replace")
        except LookupError:  # an unknown charset name
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; ValueError if it is not JSON."""
        return json.loads(self.content)

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        """The body in chunks as they arrive; TransportError if the connection breaks."""
        try:
            yield from self._raw.stream(chunk_size, decode_content=True)
        except (HTTPError, OSError) as exc:
            raise TransportError(_cause(exc)) from exc

    def close(self) -> None:
        """Give the connection back; one with unread body bytes is closed first, not reused."""
        if self._content is None and not self._raw.closed:
            self._raw.close()
        self._raw.release_conn()

    def __enter__(self) -> Response:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Route:
    """How to reach one scheme://host: its urllib3 pool and whether it goes through an HTTP proxy."""

    __slots__ = ("pool", "full_url")

    def __init__(self, pool: urllib3.HTTPConnectionPool, full_url: bool) -> None:
        self.pool = pool
        self.full_url = full_url


class Transport:
    """Thread-safe: pooled connections (`pool_size` per host, pools for `hosts` hosts at once),
    one route decided per host."""

    def __init__(self, pool_size: int = 32, hosts: int = 16) -> None:
        self._session = requests.Session()  # only for its environment settings (proxies, CA)
        # urllib3 does not retry: retries belong to tenacity, with our classification.
        self._adapter = HTTPAdapter(pool_connections=hosts, pool_maxsize=pool_size, max_retries=0)
        self._retries = self._adapter.max_retries
        self._routes: dict[tuple[str, str], _Route] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._adapter.close()
        self._session.close()

    def _route(self, url: str, key: tuple[str, str]) -> _Route:
        with self._lock:
            route = self._routes.get(key)
            if route is None:
                settings = self._session.merge_environment_settings(url, {}, None, None, None)
                verify, cert, proxies = settings["verify"], settings["cert"], settings["proxies"]
                prepared = requests.Request("GET", url).prepare()
                pool = self._adapter.get_connection_with_tls_context(
                    prepared, verify, proxies=proxies, cert=cert
                )
                self._adapter.cert_verify(pool, url, verify, cert)  # type: ignore[no-untyped-call]
                proxy = select_proxy(url, proxies)
                full_url = bool(proxy) and key[0] != "https" and not str(proxy).startswith("socks")
                route = self._routes[key] = _Route(cast(urllib3.HTTPConnectionPool, pool), full_url)
            return route

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        timeout: tuple[float, float],
        body: Any = None,
        stream: bool = False,
    ) -> Response:
        """Send one request, no retries. Unless `stream`, the body is read.

        A GET follows up to MAX_REDIRECTS redirects (a file URL may send the bytes elsewhere, as
        requests would follow); the Authorization header is not carried to another host. A
        `body` with `read()` must come with a Content-Length header; it is sent as it is read.
        """
        for _ in range(MAX_REDIRECTS + 1):
            raw = self._send(method, url, headers=headers, timeout=timeout, body=body)
            location = raw.headers.get("Location")
            if method != "GET" or raw.status not in REDIRECT_STATUSES or not location:
                response = Response(raw)
                if not stream:
                    _ = response.content
                return response
            with contextlib.suppress(HTTPError, OSError):
                raw.drain_conn()
            raw.release_conn()
            new_url = requote_uri(urljoin(url, location))
            if urlsplit(new_url)[:2] != urlsplit(url)[:2]:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            url = new_url
        raise TooManyRedirects(f"more than {MAX_REDIRECTS} redirects, the last to {urlsplit(url).path}")

    def _send(
        self, method: str, url: str, *, headers: Mapping[str, str], timeout: tuple[float, float], body: Any
    ) -> urllib3.BaseHTTPResponse:
        scheme, _, rest = url.partition("://")
        netloc, slash, path = rest.partition("/")
        key = (scheme.lower(), netloc)
        route = self._route(url, key)
        target = url if route.full_url else f"/{path}" if slash else "/"
        try:
            # The pool is kept by the route, so requests' adapter dropping it from its own
            # cache (to make room for other hosts) does not close it.
            return route.pool.urlopen(
                method,
                target,
                body=body,
                headers={"User-Agent": USER_AGENT, "Accept": "*/*", **headers},
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
                retries=self._retries,
                timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
                chunked=False,
            )
        except ClosedPoolError:
            raise TransportError("the client is closed") from None
        except ReadTimeoutError as exc:
            raise ReadTimedOut(f"no response within {timeout[1]:g}s") from exc
        except MaxRetryError as exc:
            reason = exc.reason
            if isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError):
                raise ConnectFailed(f"connect timed out after {timeout[0]:g}s") from exc
            if isinstance(reason, ReadTimeoutError):
                raise ReadTimedOut(f"no response within {timeout[1]:g}s") from exc
            raise ConnectFailed(_cause(reason or exc)) from exc
        except (HTTPError, OSError) as exc:  # reset or closed mid-request
            raise ConnectFailed(_cause(exc)) from exc

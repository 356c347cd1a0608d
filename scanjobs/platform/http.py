"""HTTP for the platform client: requests' pools and settings, without requests' per-call work.

requests decides how to reach a host (proxy from the environment, CA bundle, client certificate)
and its HTTPAdapter keeps urllib3 connection pools. It then spends more CPU per call than
urllib3 itself (merging settings and cookies, preparing and re-parsing the URL, building a
Response): with tens of thousands of small calls that was a quarter of a copy's CPU. `Transport`
asks requests once per scheme and host, keeps the pool it chose, and sends each call straight
to it, as HTTPAdapter.send does.

Each request is one attempt with a wall-clock limit over everything, the answer's body included
(watchdog.py), and a failure says how far the request got: not sent whole (`ConnectFailed`: the
server cannot have acted on it) or sent (`AnswerLost`, `ReadTimedOut`: it may have).

An attempt may come with the instance's request budget (budget.py: it waits for its place and
holds it until the attempt is over) and, for an idempotent GET, with its endpoint's `Hedge`
(hedge.py): a second, identical request is sent when the first is slow to answer, and the first
answer wins (`_Race`).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
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
    ProtocolError,
    ReadTimeoutError,
)

from scanjobs import __version__
from scanjobs.platform.budget import RequestBudget
from scanjobs.platform.hedge import Hedge
from scanjobs.platform.watchdog import Watch, Watchdog, bound_to, watched_class

__all__ = [
    "Transport",
    "Response",
    "TransportError",
    "ConnectFailed",
    "AnswerLost",
    "ReadTimedOut",
    "TooManyRedirects",
    "MAX_ANSWER_BYTES",
]

USER_AGENT = f"scanjobs/{__version__}"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
# An answer read whole (the API's JSON, an error page) longer than this is refused, not held in
# memory: the platform's answers are kilobytes, an endless one must not exhaust the machine.
MAX_ANSWER_BYTES = 32 << 20


class TransportError(Exception):
    """No usable answer: `reason` says why in a few words (never a URL's query string)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConnectFailed(TransportError):
    """The request never reached the server whole (refused, DNS, TLS, connect timeout, or the
    connection broke before the last byte of the body was sent): it cannot have acted on it."""


class AnswerLost(TransportError):
    """Sent whole, then the connection broke before the answer: the server may have acted on it."""


class ReadTimedOut(TransportError):
    """Sent, but no (complete) answer in time: the server may have acted on the request."""


class TooManyRedirects(TransportError):
    """A GET redirected more than MAX_REDIRECTS times: a loop, which no retry mends."""


def _cause(exc: BaseException) -> str:
    """'Connection refused', not urllib3's nested object reprs."""
    inner: Any = getattr(exc, "reason", None) or exc
    if isinstance(inner, ProtocolError) and len(inner.args) == 2 and isinstance(inner.args[1], Exception):
        inner = inner.args[1]  # ("Connection aborted.", RemoteDisconnected(...)): the second says it
    text = re.sub(r"<[^>]*>:?\s*", "", str(inner)).strip(" ()'\"")
    return f"{type(inner).__name__}: {text}" if text else type(inner).__name__


def _out_of_time(watch: Watch) -> ReadTimedOut:
    return ReadTimedOut(f"no complete answer within {round(watch.limit, 1):g}s (timeout.total)")


class _Outgoing:
    """A request body handed to urllib3 chunk by chunk, knowing when its last chunk was sent."""

    def __init__(self, body: Any) -> None:
        self._body = body
        self.sent = False
        # bytes go out as one chunk, so urllib3 needs to be told their length
        self.length = len(body) if isinstance(body, (bytes, bytearray)) else None

    def chunks(self) -> Iterator[bytes]:
        body = self._body
        if isinstance(body, (bytes, bytearray)):
            yield bytes(body)
        elif hasattr(body, "read"):
            while chunk := body.read(256 * 1024):
                yield chunk
        else:
            yield from body
        # urllib3 asks for the next chunk only once sendall() of the last one returned.
        self.sent = True


class Response:
    """What the platform answered: status, reason, headers, and the body read once.

    The attempt's time limit runs until the body is read or the response closed; `request_sent`
    says whether the whole request had gone out (an early answer may come before).
    """

    __slots__ = ("status_code", "reason", "headers", "request_sent", "_raw", "_watch", "_content")

    def __init__(self, raw: urllib3.BaseHTTPResponse, watch: Watch, request_sent: bool) -> None:
        self._raw = raw
        self._watch = watch
        self.status_code: int = raw.status
        self.reason: str = raw.reason or ""
        self.headers: Mapping[str, str] = raw.headers  # case-insensitive
        self.request_sent = request_sent
        self._content: bytes | None = None

    @property
    def declared_length(self) -> int | None:
        """The Content-Length, if the answer has a usable one."""
        value = self.headers.get("Content-Length", "").strip()
        return int(value) if value.isdigit() else None

    @property
    def content(self) -> bytes:
        """The whole (decoded) body; TransportError if the connection breaks while reading it,
        if it outlasts the attempt's limit or is longer than MAX_ANSWER_BYTES."""
        if self._content is None:
            self._content = b"".join(self.iter_content(256 * 1024, max_bytes=MAX_ANSWER_BYTES))
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

    def iter_content(self, chunk_size: int, *, max_bytes: int | None = None) -> Iterator[bytes]:
        """The body in chunks as they arrive, ending the attempt when it is all read.

        Never reads past `max_bytes` (one byte more tells it is longer, and stops). TransportError
        if the connection breaks, the body is longer than `max_bytes`, or the attempt runs out of
        time (ReadTimedOut).
        """
        count = 0
        try:
            while True:
                want = chunk_size if max_bytes is None else min(chunk_size, max_bytes - count + 1)
                chunk = self._raw.read(want, decode_content=True)
                if not chunk:
                    break
                count += len(chunk)
                if max_bytes is not None and count > max_bytes:
                    raise TransportError(f"the answer runs past the expected {max_bytes} bytes")
                yield chunk
        except (HTTPError, OSError) as exc:
            if self._watch.expired:
                raise _out_of_time(self._watch) from exc
            raise TransportError(f"body cut after {count} bytes: {_cause(exc)}") from exc
        finally:
            self.close()
        # A body with no Content-Length ends where the connection does: when the watchdog shut it
        # down, that end is the watchdog's, not the server's.
        if self._watch.finish():
            raise _out_of_time(self._watch)

    def close(self) -> None:
        """End the attempt and give the connection back; one with unread body bytes (or cut off
        by the watchdog) is closed, not reused."""
        expired = self._watch.finish()  # first: the watchdog must not cut a reused connection
        if expired or not self._raw.closed:  # a body read to its end leaves the response closed
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
    one route decided per host, and a watchdog for the time limit of every attempt."""

    def __init__(self, pool_size: int = 32, hosts: int = 16) -> None:
        self._session = requests.Session()  # only for its environment settings (proxies, CA)
        # urllib3 does not retry: retries belong to tenacity, with our classification.
        self._adapter = HTTPAdapter(pool_connections=hosts, pool_maxsize=pool_size, max_retries=0)
        self._retries = self._adapter.max_retries
        self._routes: dict[tuple[str, str], _Route] = {}
        self._lock = threading.Lock()
        self._watchdog = Watchdog()
        self._hedges: ThreadPoolExecutor | None = None  # made at the first hedge

    def close(self) -> None:
        self._adapter.close()
        self._session.close()
        self._watchdog.close()
        if self._hedges is not None:
            self._hedges.shutdown(wait=False, cancel_futures=True)

    def _route(self, url: str, key: tuple[str, str]) -> _Route:
        with self._lock:
            route = self._routes.get(key)
            if route is None:
                settings = self._session.merge_environment_settings(url, {}, None, None, None)
                verify, cert, proxies = settings["verify"], settings["cert"], settings["proxies"]
                prepared = requests.Request("GET", url).prepare()
                pool = cast(
                    urllib3.HTTPConnectionPool,
                    self._adapter.get_connection_with_tls_context(
                        prepared, verify, proxies=proxies, cert=cert
                    ),
                )
                self._adapter.cert_verify(pool, url, verify, cert)  # type: ignore[no-untyped-call]
                # Its connections tell the watchdog which socket to shut when an attempt runs
                # out of time (set before the pool made any connection: it makes them lazily).
                pool.ConnectionCls = watched_class(pool.ConnectionCls)
                proxy = select_proxy(url, proxies)
                full_url = bool(proxy) and key[0] != "https" and not str(proxy).startswith("socks")
                route = self._routes[key] = _Route(pool, full_url)
            return route

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        timeout: tuple[float, float],
        limit: float,
        body: Any = None,
        stream: bool = False,
        budget: RequestBudget | None = None,
        hedge: Hedge | None = None,
    ) -> Response:
        """Send one request (one attempt, no retries) within `limit` seconds of wall-clock time,
        the answer's body included. Unless `stream`, the body is read.

        With `budget`, the attempt waits for its place and holds it until it is over (a streamed
        answer: until it is read or closed); each redirect waits for the rate again. With `hedge`
        (a GET without a body only), a first request still without an answer after the hedge's
        delay gets a second one (`_race`).

        A GET follows up to MAX_REDIRECTS redirects (a file URL may send the bytes elsewhere, as
        requests would follow), within the same limit; the Authorization header is not carried to
        another host. A `body` with `read()` or an iterable body must come with a Content-Length
        header; it is sent as it is read.
        """
        if hedge is not None and (method != "GET" or body is not None):
            raise ValueError("only a GET without a body is hedged")
        watch = self._watchdog.watch(limit, on_finish=None if budget is None else budget.enter())
        try:
            for hop in range(MAX_REDIRECTS + 1):
                outgoing = None if body is None else _Outgoing(body)
                if hop == 0 and hedge is not None:
                    raw, watch = self._race(
                        hedge, url, headers=headers, timeout=timeout, limit=limit, watch=watch, budget=budget
                    )
                else:
                    if hop and budget is not None:
                        budget.pace()
                    raw = self._send(
                        method, url, headers=headers, timeout=timeout, outgoing=outgoing, watch=watch
                    )
                location = raw.headers.get("Location")
                if method != "GET" or raw.status not in REDIRECT_STATUSES or not location:
                    response = Response(raw, watch, outgoing is None or outgoing.sent)
                    if not stream:
                        _ = response.content
                    return response
                with contextlib.suppress(HTTPError, OSError):
                    raw.drain_conn()
                if watch.expired:
                    raw.close()
                    raise _out_of_time(watch)
                raw.release_conn()
                new_url = requote_uri(urljoin(url, location))
                if urlsplit(new_url)[:2] != urlsplit(url)[:2]:
                    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                url = new_url
            raise TooManyRedirects(f"more than {MAX_REDIRECTS} redirects, the last to {urlsplit(url).path}")
        except BaseException:
            watch.finish()
            raise

    def _race(
        self,
        hedge: Hedge,
        url: str,
        *,
        headers: Mapping[str, str],
        timeout: tuple[float, float],
        limit: float,
        watch: Watch,
        budget: RequestBudget | None,
    ) -> tuple[urllib3.BaseHTTPResponse, Watch]:
        """GET `url` (the first hop), hedged: the answer that came first and the watch of its attempt.

        The first request is sent from this thread. If it has no answer after the hedge's delay,
        a second one goes out from the hedge pool, if the hedge's budget and the instance's
        budget allow it at once. The first answer wins and the other attempt is cut off; if the
        first request fails while a hedge is on its way, the hedge's outcome decides.
        """
        delay = hedge.delay()
        started = time.monotonic()
        if delay is None:
            raw = self._send("GET", url, headers=headers, timeout=timeout, outgoing=None, watch=watch)
            hedge.record(time.monotonic() - started)
            return raw, watch
        race = _Race(watch)

        def second() -> None:
            release = None if budget is None else budget.try_enter()
            if (budget is not None and release is None) or not race.launch(hedge, release):
                return
            hedge_watch = self._watchdog.watch(limit, on_finish=release)
            if not race.started(hedge_watch):
                hedge_watch.finish()
                return
            began = time.monotonic()
            try:
                raw = self._send(
                    "GET", url, headers=headers, timeout=timeout, outgoing=None, watch=hedge_watch
                )
            except BaseException:
                hedge_watch.finish()
                race.hedge_failed()
                return
            if race.hedge_answered(raw):
                hedge.won()
                hedge.record(time.monotonic() - began)
            else:
                _discard(raw, hedge_watch)

        def launch() -> None:  # on the watchdog's thread: hand the hedge to the pool
            with self._lock:
                if self._hedges is None:
                    self._hedges = ThreadPoolExecutor(8, thread_name_prefix="scanjobs-hedge")
                pool = self._hedges
            pool.submit(second)

        timer = self._watchdog.call_at(started + delay, launch)
        try:
            raw = self._send("GET", url, headers=headers, timeout=timeout, outgoing=None, watch=watch)
        except TransportError:
            timer.cancel()
            won = race.first_failed()
            if won is None:
                raise
            watch.finish()
            return won
        except BaseException:
            timer.cancel()
            won = race.first_failed(wait=False)
            if won is not None:
                _discard(*won)
            raise
        timer.cancel()
        if race.first_answered():
            hedge.record(time.monotonic() - started)
            return raw, watch
        _discard(raw, watch)  # the hedge answered first
        won = race.first_failed()
        assert won is not None, "a hedge that answered first is the winner"
        return won

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        timeout: tuple[float, float],
        outgoing: _Outgoing | None,
        watch: Watch,
    ) -> urllib3.BaseHTTPResponse:
        scheme, _, rest = url.partition("://")
        netloc, slash, path = rest.partition("/")
        key = (scheme.lower(), netloc)
        route = self._route(url, key)
        target = url if route.full_url else f"/{path}" if slash else "/"
        extra = (
            {} if outgoing is None or outgoing.length is None else {"Content-Length": str(outgoing.length)}
        )
        try:
            # The pool is kept by the route, so requests' adapter dropping it from its own
            # cache (to make room for other hosts) does not close it.
            with bound_to(watch):
                return route.pool.urlopen(
                    method,
                    target,
                    body=None if outgoing is None else outgoing.chunks(),
                    headers={"User-Agent": USER_AGENT, "Accept": "*/*", **extra, **headers},
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
        except (HTTPError, OSError) as exc:
            raise _failure(exc, timeout, sent=outgoing is None or outgoing.sent, watch=watch) from exc


def _discard(raw: urllib3.BaseHTTPResponse, watch: Watch) -> None:
    """Drop the answer of an attempt that lost a race: its connection is closed, not reused."""
    watch.finish()
    with contextlib.suppress(HTTPError, OSError):
        raw.close()
    raw.release_conn()


class _Race:
    """A first request and its hedge: who answered first, and the hedge's answer if it did.

    `winner` is None while undecided, then "first", "hedge" or "none" (the first failed with
    no hedge on its way). A hedge starts only while undecided; the loser's attempt is cut off.
    """

    def __init__(self, first: Watch) -> None:
        self._lock = threading.Lock()
        self._first = first
        self._winner: str | None = None
        self._launched = False
        self._hedge_watch: Watch | None = None
        self._hedge_raw: urllib3.BaseHTTPResponse | None = None
        self._hedge_over = threading.Event()

    def launch(self, hedge: Hedge, release: Any) -> bool:
        """The hedge may go out (undecided, and its budget has one): True, and it is on its way."""
        with self._lock:
            if self._winner is None and hedge.take():
                self._launched = True
                return True
        if release is not None:
            release()
        return False

    def started(self, watch: Watch) -> bool:
        """The hedge's attempt has its watch; False if the race was decided meanwhile."""
        with self._lock:
            if self._winner is not None:
                self._hedge_over.set()
                return False
            self._hedge_watch = watch
            return True

    def hedge_answered(self, raw: urllib3.BaseHTTPResponse) -> bool:
        """The hedge has its answer: True if it is the first (the first request is cut off)."""
        with self._lock:
            won = self._winner is None
            if won:
                self._winner, self._hedge_raw = "hedge", raw
        if won:
            self._first.cancel()
        self._hedge_over.set()
        return won

    def hedge_failed(self) -> None:
        self._hedge_over.set()

    def first_answered(self) -> bool:
        """The first request has its answer: True if it is the first (the hedge is cut off)."""
        with self._lock:
            if self._winner is not None:
                return False
            self._winner = "first"
            hedge = self._hedge_watch
        if hedge is not None:
            hedge.cancel()
        return True

    def first_failed(self, *, wait: bool = True) -> tuple[urllib3.BaseHTTPResponse, Watch] | None:
        """The first request failed (or lost): the hedge's answer and watch if it won, after
        waiting for a hedge on its way (`wait`); None if there is none to use."""
        with self._lock:
            if self._winner is None and not self._launched:
                self._winner = "none"
            launched = self._launched
        if launched and wait:
            self._hedge_over.wait()
        with self._lock:
            if self._winner == "hedge":
                assert self._hedge_raw is not None and self._hedge_watch is not None
                return self._hedge_raw, self._hedge_watch
            self._winner = "none"
            hedge = self._hedge_watch
        if hedge is not None:
            hedge.cancel()
        return None


def _failure(
    exc: HTTPError | OSError, timeout: tuple[float, float], *, sent: bool, watch: Watch
) -> TransportError:
    """What a failed urlopen means for a retry: whether the request can have reached the server."""
    reason = exc.reason if isinstance(exc, MaxRetryError) else exc
    if isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError):
        return ConnectFailed(f"connect timed out after {timeout[0]:g}s")
    if isinstance(exc, MaxRetryError) and not isinstance(reason, ReadTimeoutError):
        return ConnectFailed(_cause(reason or exc))  # urllib3 says: no connection was made
    if not sent:  # broke before the body's last byte went out: no server acts on half a request
        cause = "out of time" if watch.expired else _cause(reason or exc)
        return ConnectFailed(f"the request was not sent whole: {cause}")
    if watch.expired:
        return _out_of_time(watch)
    if isinstance(reason, ReadTimeoutError):
        return ReadTimedOut(f"no response within {timeout[1]:g}s")
    return AnswerLost(f"sent, then no answer: {_cause(reason or exc)}")

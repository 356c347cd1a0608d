"""Wall-clock limits of HTTP attempts: one thread shuts the connection of an attempt out of time.

urllib3's read timeout bounds each wait for the next bytes, so a server that sends one byte now
and then (in the headers or in the body) holds a request for as long as it likes. A `Watch` is
the time limit of one attempt. The connection classes of our pools are `watched_class` subclasses:
the connection an attempt opens or sends on binds itself to the attempt's watch (a thread-local
says which one), and when the limit passes, the `Watchdog` thread shuts that connection's socket
down. The blocked read or write then returns at once, and the attempt sees `expired`.

One thread serves every attempt of a transport (a heap of deadlines), so an attempt costs a
heap push, not a timer thread.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from urllib3.connection import HTTPConnection

__all__ = ["Watch", "Watchdog", "Timer", "watched_class", "bound_to"]

RECHECK = 0.05  # seconds: an expired attempt whose connection has no socket yet is tried again
MAX_WAIT = 3600.0  # seconds: longer waits are taken in steps (a lock's timeout has a maximum)


class Watch:
    """The wall-clock limit of one attempt; `expired` once the watchdog cut it off."""

    __slots__ = ("limit", "deadline", "expired", "_conn", "_sock", "_done", "_lock", "_dog", "_on_finish")

    def __init__(self, limit: float, dog: Watchdog, on_finish: Callable[[], None] | None = None) -> None:
        self.limit = limit
        self.deadline = time.monotonic() + limit
        self.expired = False
        self._conn: HTTPConnection | None = None
        self._sock: socket.socket | None = None
        self._done = False
        self._lock = threading.Lock()
        self._dog = dog
        self._on_finish = on_finish

    def bind(self, conn: HTTPConnection) -> None:
        """`conn` carries this attempt now: it is the one to shut down when time runs out."""
        with self._lock:
            # Its socket too: an answer with `Connection: close` takes the socket over from the
            # connection, which forgets it (http.client), while the body is still being read.
            self._sock = conn.sock or (self._sock if conn is self._conn else None)
            self._conn = conn

    def finish(self) -> bool:
        """The attempt is over: never cut it from now on. True if it had been cut off already.

        Call it before the connection goes back to the pool, so a later cut cannot hit the
        connection once another attempt uses it."""
        with self._lock:
            if self._done:
                return self.expired
            self._done = True
            self._conn = self._sock = None
        self._dog.finished()
        if self._on_finish is not None:
            self._on_finish()
        return self.expired

    def cut(self) -> bool:
        """Time is up: shut the connection down. False if there is no socket yet (the attempt
        has not reached or not made its connection): the watchdog tries again shortly."""
        with self._lock:
            if self._done:
                return True
            self.expired = True
            sock = (self._conn.sock if self._conn is not None else None) or self._sock
            if sock is None:
                return False
            # The plain socket's shutdown, also for TLS: SSLSocket.shutdown would drop its SSL
            # object under the feet of the thread reading from it.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            return True

    def cancel(self) -> None:
        """End the attempt now, as if its time were up (another attempt answered first)."""
        if not self.cut():
            self._dog.due_now(self)

    @property
    def done(self) -> bool:
        return self._done


class Timer:
    """A call the watchdog's thread makes at a given time, unless cancelled first. The call must
    be quick (it runs on the thread that cuts attempts off): hand real work to another thread."""

    __slots__ = ("_fn", "_done", "_dog")

    def __init__(self, fn: Callable[[], None], dog: Watchdog) -> None:
        self._fn = fn
        self._done = False
        self._dog = dog

    def cancel(self) -> None:
        with self._dog._cond:  # the watchdog fires timers under this lock
            if self._done:
                return
            self._done = True
        self._dog.finished()

    @property
    def done(self) -> bool:
        return self._done

    def cut(self) -> bool:
        """Due: make the call (the watchdog's thread, holding its lock)."""
        if not self._done:
            self._done = True
            self._dog.finished()  # its lock is re-entrant
            with contextlib.suppress(Exception):  # e.g. a pool shut down: the thread must live on
                self._fn()
        return True


class Watchdog:
    """Cuts off each watched attempt that outlives its limit. Thread-safe; its thread starts
    with the first watch and ends with `close()`."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Watch | Timer]] = []
        self._order = itertools.count()  # ties in the heap never compare two Watch objects
        self._live = 0  # watches not finished; the heap also holds finished ones until due
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(self, limit: float, on_finish: Callable[[], None] | None = None) -> Watch:
        """Start the limit of one attempt: `limit` seconds from now. `on_finish` is called once,
        when the attempt is over (its `finish`)."""
        watch = Watch(limit, self, on_finish)
        self._push(watch.deadline, watch, live=True)
        return watch

    def call_at(self, when: float, fn: Callable[[], None]) -> Timer:
        """Call `fn` on the watchdog's thread at `when` (time.monotonic()), unless cancelled."""
        timer = Timer(fn, self)
        self._push(when, timer, live=True)
        return timer

    def due_now(self, watch: Watch) -> None:
        """Cut `watch` off as soon as it has a connection to cut (see Watch.cancel)."""
        self._push(time.monotonic() + RECHECK, watch, live=False)

    def _push(self, when: float, entry: Watch | Timer, *, live: bool) -> None:
        with self._cond:
            if live:
                self._live += 1
            heapq.heappush(self._heap, (when, next(self._order), entry))
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="scanjobs-watchdog", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is entry:
                self._cond.notify()

    def finished(self) -> None:
        """A watch or timer is over: it no longer counts as live."""
        with self._cond:
            self._live -= 1
            # Finished watches wait in the heap until their deadline; drop them once they are
            # most of it, so thousands of quick calls do not keep thousands of entries.
            if len(self._heap) > 2 * self._live + 256:
                self._heap = [entry for entry in self._heap if not entry[2].done]
                heapq.heapify(self._heap)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, _, watch = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(min(wait, MAX_WAIT))
                    continue
                heapq.heappop(self._heap)
                if not watch.done and not watch.cut():
                    heapq.heappush(self._heap, (deadline + RECHECK, next(self._order), watch))


_current = threading.local()


@contextlib.contextmanager
def bound_to(watch: Watch) -> Iterator[None]:
    """The connection this thread connects or sends on inside the block belongs to `watch`."""
    _current.watch = watch
    try:
        yield
    finally:
        _current.watch = None


def _bind(conn: HTTPConnection) -> None:
    watch: Watch | None = getattr(_current, "watch", None)
    if watch is not None:
        watch.bind(conn)


class _Watched(HTTPConnection):
    """Mixed in before a pool's connection class: binds the connection to the thread's watch
    as it connects (a TLS pool connects before sending) and as it sends a request."""

    def connect(self) -> None:
        _bind(self)
        super().connect()
        _bind(self)  # again, now with its socket

    def request(  # type: ignore[override]  # urllib3's own signature, which overrides http.client's
        self,
        method: str,
        url: str,
        body: Any = None,
        headers: Any = None,
        *,
        chunked: bool = False,
        preload_content: bool = True,
        decode_content: bool = True,
        enforce_content_length: bool = True,
    ) -> None:
        _bind(self)
        super().request(
            method,
            url,
            body=body,
            headers=headers,
            chunked=chunked,
            preload_content=preload_content,
            decode_content=decode_content,
            enforce_content_length=enforce_content_length,
        )


_classes: dict[type[Any], type[Any]] = {}
_classes_lock = threading.Lock()


def watched_class(cls: type[Any]) -> type[Any]:
    """`cls` (a urllib3 connection class: HTTP, HTTPS, SOCKS) with the binding mixed in."""
    if issubclass(cls, _Watched):
        return cls
    with _classes_lock:
        watched = _classes.get(cls)
        if watched is None:
            watched = _classes[cls] = type(f"Watched{cls.__name__}", (_Watched, cls), {})
        return watched

"""The transport against a raw loopback server: how far a request got, and a limit on each attempt."""

from __future__ import annotations

import io
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from scanjobs.errors import TransientError
from scanjobs.platform.api import PlatformAPI
from scanjobs.platform.http import (
    MAX_ANSWER_BYTES,
    AnswerLost,
    ConnectFailed,
    ReadTimedOut,
    Transport,
    TransportError,
)
from scanjobs.platform.retry import RetryEvent, RetryPolicy, Timeouts
from scanjobs.platform.watchdog import Watchdog

FAST = RetryPolicy(attempts=3, initial=0.01, max=0.02, deadline=30)
UPLOAD = "/api/v4/processing/upload/"

# -- a raw HTTP server on loopback: each request not a login takes the next scripted action ------

Action = Callable[[socket.socket, str, bytes], bool]  # (connection, path, body) -> keep it open


def _read_head(conn: socket.socket) -> tuple[str, int, bytes] | None:
    """(path, Content-Length, the body bytes read with the head), or None at the end."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = (line.partition(":") for line in lines[1:])
    length = next((int(v) for k, _, v in fields if k.lower() == "content-length"), 0)
    return lines[0].split(" ")[1], length, body


def _read_body(conn: socket.socket, length: int, body: bytes) -> bytes | None:
    while len(body) < length:
        chunk = conn.recv(1 << 20)
        if not chunk:
            return None
        body += chunk
    return body


def _answer(conn: socket.socket, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    conn.sendall(head.encode() + body)


def _reset(conn: socket.socket) -> None:
    """Close with a TCP reset, as a crashed server or a proxy dropping the connection does."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def answer(status: int, payload: Any = None) -> Action:
    def act(conn: socket.socket, path: str, body: bytes) -> bool:
        _answer(conn, status, payload if payload is not None else {"detail": "x"})
        return True

    return act


def lose_the_answer(conn: socket.socket, path: str, body: bytes) -> bool:
    _reset(conn)
    return False


def drip(head: bytes) -> Action:
    """Send `head`, then a byte every 0.05 s until the client hangs up."""

    def act(conn: socket.socket, path: str, body: bytes) -> bool:
        try:
            conn.sendall(head)
            while True:
                time.sleep(0.05)
                conn.sendall(b"a")
        except OSError:
            return False

    return act


def endless(conn: socket.socket, path: str, body: bytes) -> bool:
    """An answer with no Content-Length whose body never ends, as fast as the client reads."""
    try:
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        while True:
            conn.sendall(bytes(65536))
    except OSError:
        return False


class RawServer:
    def __init__(self, *actions: Action, cut_after: int | None = None) -> None:
        """`cut_after`: the first request's connection is reset once that many bytes arrived."""
        self.actions = list(actions)
        self.requests: list[str] = []
        self.cut_after = cut_after
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while True:
                head = _read_head(conn)
                if head is None:
                    return
                path, length, body = head
                if path != "/api/v4/token-auth/" and self.cut_after is not None:
                    self.cut_after, limit = None, self.cut_after
                    while len(body) < limit and (chunk := conn.recv(65536)):
                        body += chunk
                    self.requests.append("cut")
                    _reset(conn)
                    return
                whole = _read_body(conn, length, body)
                if whole is None:
                    return
                if path == "/api/v4/token-auth/":
                    _answer(conn, 200, {"id": 1, "token": "tok"})
                    continue
                self.requests.append(path)
                action = self.actions.pop(0) if len(self.actions) > 1 else self.actions[0]
                if not action(conn, path, whole):
                    return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def servers() -> Iterator[list[RawServer]]:
    started: list[RawServer] = []
    yield started
    for server in started:
        server.close()


def serve(servers: list[RawServer], *actions: Action, cut_after: int | None = None) -> RawServer:
    server = RawServer(*actions, cut_after=cut_after)
    servers.append(server)
    return server


def api_for(server: RawServer, events: list[RetryEvent] | None = None, **timeouts: float) -> PlatformAPI:
    return PlatformAPI(
        server.url,
        "robot",
        "pw",
        retry=FAST,
        timeouts=Timeouts(**{"connect": 2, "read": 5, **timeouts}),
        on_retry=None if events is None else events.append,
    )


# -- point 5: once a request went out whole, a lost answer is not a reason to send it again --------


def test_an_upload_whose_answer_is_lost_once_sent_is_not_resent(servers: list[RawServer]) -> None:
    """issue 12, point 5: the connection drops after the platform read the whole upload (it may
    have stored it): no second upload, a TransientError that says why."""
    server = serve(servers, lose_the_answer, answer(201, {"id": 5}))
    with (
        api_for(server) as api,
        pytest.raises(TransientError, match="may have acted on it, so it is not resent"),
    ):
        api.upload(io.BytesIO(b"\x89PNG" * 1000), "a.png")
    assert server.requests == [UPLOAD]


def test_an_upload_cut_off_before_its_body_went_out_whole_is_resent(servers: list[RawServer]) -> None:
    """issue 12, point 5: a connection that breaks while the body is being sent leaves the platform
    with half a request, which it cannot store: that upload is sent again."""
    server = serve(servers, answer(201, {"id": 5}), cut_after=256 * 1024)
    events: list[RetryEvent] = []
    with api_for(server, events) as api:
        assert api.upload(io.BytesIO(bytes(32 << 20)), "big.png") == 5  # more than socket buffers hold
    assert server.requests == ["cut", UPLOAD]
    assert len(events) == 1 and "not sent whole" in events[0].reason


@pytest.mark.parametrize(
    ("status", "resent"), [(502, False), (504, False), (500, False), (503, True), (429, True)]
)
def test_an_upload_is_resent_only_after_statuses_that_say_nothing_was_done(
    servers: list[RawServer], status: int, resent: bool
) -> None:
    """issue 12, point 5: a 502/504 from a proxy, or a 500, may come after the platform stored the
    file (and a 500 is no PermanentError here, which adoption takes as "nothing made"); a 503 or a
    429 says it was not taken."""
    server = serve(servers, answer(status), answer(201, {"id": 5}))
    with api_for(server) as api:
        if resent:
            assert api.upload(io.BytesIO(b"abc"), "a.png") == 5
        else:
            with pytest.raises(TransientError, match=f"{status} .* not resent"):
                api.upload(io.BytesIO(b"abc"), "a.png")
    assert server.requests == [UPLOAD] * (2 if resent else 1)


def test_an_upload_answered_2xx_without_a_usable_id_stays_unsettled(servers: list[RawServer]) -> None:
    """issue 12, point 5 (a sibling): a 2xx that is not JSON, or has no id, may still mean a stored
    file. Not a PermanentError (which adoption takes as "nothing made"), not resent either."""

    def not_json(conn: socket.socket, path: str, body: bytes) -> bool:
        conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\noops")
        return True

    server = serve(servers, not_json, answer(201, {"no": "id"}), answer(201, {"id": 5}))
    with api_for(server) as api:
        for _ in range(2):
            with pytest.raises(TransientError, match="so it is not resent"):
                api.upload(io.BytesIO(b"abc"), "a.png")
    assert server.requests == [UPLOAD, UPLOAD]


def test_an_idempotent_create_is_resent_after_a_lost_answer(servers: list[RawServer]) -> None:
    """issue 12, point 5 (its sibling): the create carries its request uid, so it may be resent."""
    server = serve(servers, lose_the_answer, answer(502), answer(201, {"id": 9}))
    with api_for(server) as api:
        assert api.create_scan({"store": 1}, "uid-1") == 9
    assert len(server.requests) == 3


def test_the_transport_says_how_far_a_request_got(servers: list[RawServer]) -> None:
    """A refused connection and a half-sent body are ConnectFailed; a lost answer is AnswerLost."""
    http = Transport()
    try:
        closed = socket.create_server(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()
        with pytest.raises(ConnectFailed):
            http.request("GET", f"http://127.0.0.1:{port}/", headers={}, timeout=(2, 2), limit=10)
        server = serve(servers, lose_the_answer)
        with pytest.raises(AnswerLost):
            http.request("POST", f"{server.url}/x", headers={}, timeout=(2, 2), limit=10, body=b"{}")
        cut = serve(servers, answer(200, {}), cut_after=1024)
        big = bytes(32 << 20)
        with pytest.raises(ConnectFailed, match="not sent whole"):
            http.request("POST", f"{cut.url}/x", headers={}, timeout=(2, 2), limit=10, body=big)
    finally:
        http.close()


# -- point 7: a wall-clock limit per attempt, and never a byte past the expected size ---------------


@pytest.mark.timeout(30)  # the ceiling: without the limit these calls never end
@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nX-Slow: ",  # the headers never end
        b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",  # nor the body
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",  # nor a body without a length
    ],
)
def test_a_dripping_answer_is_cut_off_at_the_attempt_limit(servers: list[RawServer], head: bytes) -> None:
    """issue 12, point 7: a byte every 0.05 s resets the read timeout each time; the attempt's
    wall-clock limit ends it all the same, for an API call and for a download."""
    server = serve(servers, drip(head))
    http = Transport()
    try:
        with pytest.raises(ReadTimedOut, match=r"within 0\.5s"):
            http.request("GET", f"{server.url}/x", headers={}, timeout=(2, 2), limit=0.5)
        with pytest.raises(ReadTimedOut, match=r"within 0\.5s"):
            response = http.request(
                "GET", f"{server.url}/x", headers={}, timeout=(2, 2), limit=0.5, stream=True
            )
            for _ in response.iter_content(65536):
                pass
    finally:
        http.close()
    events: list[RetryEvent] = []
    with api_for(server, events, total=0.5) as api, pytest.raises(TransientError, match="within 0.5s"):
        api.download(f"{server.url}/file.png", io.BytesIO())
    assert len(events) == FAST.attempts - 1


def test_a_body_is_never_read_past_the_expected_size(servers: list[RawServer]) -> None:
    """issue 12, point 7: an answer without a length that runs on: reading stops one byte past
    what is expected (the file's size, or MAX_ANSWER_BYTES for an API answer), and fails."""
    server = serve(servers, endless)
    http = Transport()
    try:
        response = http.request("GET", f"{server.url}/x", headers={}, timeout=(2, 2), limit=30, stream=True)
        got = 0
        with pytest.raises(TransportError, match="past the expected 1000 bytes"):
            for chunk in response.iter_content(65536, max_bytes=1000):
                got += len(chunk)
        assert got <= 1000
        with pytest.raises(TransportError, match=f"past the expected {MAX_ANSWER_BYTES} bytes"):
            http.request("GET", f"{server.url}/x", headers={}, timeout=(2, 2), limit=30)
    finally:
        http.close()
    with api_for(server) as api, pytest.raises(TransientError, match="past the expected 10 bytes"):
        api.download(f"{server.url}/file.png", io.BytesIO(), expected_size=10)


def test_a_download_shorter_than_the_known_size_is_retried(servers: list[RawServer]) -> None:
    """issue 12, point 6: with no Content-Length a body ends where its connection does: fewer
    bytes than the file's known size is a cut answer, retried, never the file."""

    def short(conn: socket.socket, path: str, body: bytes) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * 5)
        return False

    def whole(conn: socket.socket, path: str, body: bytes) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * 10)
        return False

    server = serve(servers, short, whole)
    events: list[RetryEvent] = []
    with api_for(server, events) as api, io.BytesIO() as dest:
        assert api.download(f"{server.url}/f.png", dest, expected_size=10).bytes == 10
        assert dest.getvalue() == b"x" * 10
    assert [e.reason for e in events] == ["short body: 5 of 10 bytes"]


# -- the watchdog itself -----------------------------------------------------------------------------


def test_a_finished_watch_is_never_cut_and_finished_ones_do_not_pile_up() -> None:
    dog = Watchdog()
    try:
        first = dog.watch(0.05)
        assert first.finish() is False
        for _ in range(5000):
            dog.watch(60).finish()
        assert len(dog._heap) < 1000, "finished watches must not accumulate"
        late = dog.watch(0.01)
        deadline = time.monotonic() + 10
        while not late.expired:
            assert time.monotonic() < deadline, "an unfinished watch past its limit is cut"
            time.sleep(0.01)
        assert late.finish() is True and first.expired is False
    finally:
        dog.close()


def test_a_limit_beyond_what_a_lock_can_wait_does_not_stop_the_watchdog() -> None:
    """A huge timeout.total (1e20 s) must not crash the watchdog's thread, which serves every
    attempt of the transport: once the short watch is cut, the huge one is next in line."""
    dog = Watchdog()

    def cut_soon() -> None:
        watch = dog.watch(0.01)
        deadline = time.monotonic() + 10
        while not watch.expired:
            assert time.monotonic() < deadline, "the watchdog no longer cuts anything"
            time.sleep(0.01)
        watch.finish()

    try:
        dog.watch(1e20)
        cut_soon()
        deadline = time.monotonic() + 10
        while True:  # until the thread waits on the huge watch alone (it holds the lock till then)
            with dog._cond:
                if len(dog._heap) == 1:
                    break
            assert time.monotonic() < deadline
            time.sleep(0.01)
        cut_soon()
    finally:
        dog.close()

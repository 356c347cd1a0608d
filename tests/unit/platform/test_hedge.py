"""Hedged reads: the delay, the budget, and the race of a first request and its hedge on loopback."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from scanjobs.platform.hedge import Hedge, HedgeCounts
from scanjobs.platform.http import AnswerLost, Transport

DEADLINE = 30.0  # seconds any wait in these tests may take before it is a failure


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


# -- the Hedge record ----------------------------------------------------------------------------


def test_a_cautious_delay_until_enough_answers_are_known() -> None:
    hedge = Hedge(min_samples=50, initial_delay=1.0)
    for _ in range(49):
        assert hedge.delay() == 1.0
        hedge.record(0.1)
    hedge.record(0.1)
    assert hedge.delay() == pytest.approx(0.1)
    assert Hedge(initial_delay=None).delay() is None


def test_one_hedge_is_saved_up_at_the_start() -> None:
    hedge = Hedge(share=0.03)
    hedge.delay()
    assert hedge.take()
    assert not hedge.take()


def test_the_delay_is_a_high_percentile_of_recent_answers() -> None:
    """Taken over the last `samples` answers, recomputed every 32 (here at 50, 82, 114, ...)."""
    hedge = Hedge(min_samples=50, samples=100, min_delay=0.0)
    for i in range(114):
        hedge.record(i / 1000)  # 0 ms .. 113 ms; the record keeps 14 .. 113
    assert hedge.delay() == pytest.approx(0.113)
    for _ in range(128):  # the endpoint got faster: old answers leave the record
        hedge.record(0.005)
    assert hedge.delay() == pytest.approx(0.005)


def test_the_delay_has_a_floor() -> None:
    hedge = Hedge(min_samples=50, min_delay=0.02)
    for _ in range(60):
        hedge.record(0.0001)
    assert hedge.delay() == pytest.approx(0.02)


def test_hedges_are_a_bounded_share_of_reads() -> None:
    """However slow the endpoint, hedges stay within share x reads plus the saved-up burst."""
    hedge = Hedge(share=0.03, burst=5)
    taken = 0
    for _ in range(10_000):
        hedge.delay()
        taken += hedge.take()
    assert taken <= 0.03 * 10_000 + 5
    assert taken >= 0.03 * 10_000
    assert hedge.counts == HedgeCounts(reads=10_000, sent=taken, won=0)


# -- the race, against a scripted loopback server --------------------------------------------------


class Script:
    """What the server does with each request, by its number (1, 2, ...): answer at once, or
    wait for an event first, or reset the connection after an event."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()
        self.hold: dict[int, threading.Event] = {}
        self.reset: set[int] = set()
        self.arrived: dict[int, threading.Event] = {}
        self.was_reset = threading.Event()

    def number(self) -> int:
        with self.lock:
            self.count += 1
            n = self.count
        self.arrived.setdefault(n, threading.Event()).set()
        return n

    def arrival(self, n: int) -> threading.Event:
        with self.lock:
            return self.arrived.setdefault(n, threading.Event())

    def release_all(self) -> None:
        for event in self.hold.values():
            event.set()


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            n = script.number()
            hold = script.hold.get(n)
            if hold is not None:
                hold.wait(DEADLINE)
            if n in script.reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                script.was_reset.set()
                return
            body = json.dumps({"n": n}).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the client cut this attempt off: it lost its race
                self.close_connection = True

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/meta", script
    finally:
        script.release_all()
        httpd.shutdown()
        httpd.server_close()


def get(transport: Transport, url: str, hedge: Hedge) -> Any:
    response = transport.request("GET", url, headers={}, timeout=(5, 60), limit=60, hedge=hedge)
    assert response.status_code == 200
    return response.json()["n"]


def warmed(transport: Transport, url: str) -> Hedge:
    """A hedge that may hedge every read, its delay known from 5 quick answers."""
    hedge = Hedge(min_samples=5, share=1.0, burst=5, min_delay=0.01, initial_delay=None)
    for _ in range(5):
        get(transport, url, hedge)
    assert hedge.delay() is not None
    return hedge


def test_a_hung_read_is_answered_by_its_hedge(server: tuple[str, Script]) -> None:
    url, script = server
    with closing(Transport()) as transport:
        hedge = warmed(transport, url)
        script.hold[6] = threading.Event()  # the next read hangs until the end of the test
        assert get(transport, url, hedge) == 7  # the hedge's answer
        assert not script.hold[6].is_set()  # the first is still hanging: the hedge answered alone
        counts = hedge.counts
        assert (counts.sent, counts.won) == (1, 1)


def test_the_first_answer_wins_and_the_hedge_is_cut_off(server: tuple[str, Script]) -> None:
    url, script = server
    with closing(Transport()) as transport:
        hedge = warmed(transport, url)
        script.hold[6], script.hold[7] = threading.Event(), threading.Event()
        release_first = threading.Thread(
            target=lambda: (script.arrival(7).wait(DEADLINE), script.hold[6].set())
        )
        release_first.start()  # the first answers once its hedge has arrived; the hedge never does
        assert get(transport, url, hedge) == 6
        release_first.join(DEADLINE)
        counts = hedge.counts
        assert (counts.sent, counts.won) == (1, 0)
        assert get(transport, url, hedge) >= 8  # goes on with fresh connections (8, or its hedge)


def test_a_first_request_that_fails_leaves_it_to_its_hedge(server: tuple[str, Script]) -> None:
    url, script = server
    with closing(Transport()) as transport:
        hedge = warmed(transport, url)
        # The first is reset once its hedge has arrived; the hedge answers once the reset is done.
        script.hold[6], script.hold[7] = threading.Event(), threading.Event()
        script.reset.add(6)

        def choreography() -> None:
            script.arrival(7).wait(DEADLINE)
            script.hold[6].set()
            script.was_reset.wait(DEADLINE)
            script.hold[7].set()

        threading.Thread(target=choreography).start()
        assert get(transport, url, hedge) == 7
        assert hedge.counts.won == 1


def test_without_a_hedge_a_failed_read_fails(server: tuple[str, Script]) -> None:
    url, script = server
    with closing(Transport()) as transport:
        hedge = Hedge(initial_delay=None)  # never hedges: no delay without 50 answers
        script.reset.add(1)
        with pytest.raises(AnswerLost):
            get(transport, url, hedge)
        assert hedge.counts.sent == 0


def test_only_a_get_without_a_body_is_hedged() -> None:
    with closing(Transport()) as transport:
        for method, body in (("POST", b"x"), ("GET", b"x"), ("PUT", None)):
            with pytest.raises(ValueError, match="only a GET"):
                transport.request(
                    method,
                    "http://127.0.0.1:9/",
                    headers={},
                    timeout=(1, 1),
                    limit=1,
                    body=body,
                    hedge=Hedge(),
                )

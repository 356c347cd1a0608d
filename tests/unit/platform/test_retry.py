"""Retry policy, Retry-After parsing and error classification of the platform API client."""

from __future__ import annotations

import email.utils
import hashlib
import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from scanjobs.errors import AuthError, PermanentError, TransientError, UnreachableError
from scanjobs.platform.api import PlatformAPI
from scanjobs.platform.retry import (
    RetryableFailure,
    RetryEvent,
    RetryPolicy,
    Timeouts,
    call_with_retry,
    parse_retry_after,
)

PASSWORD = "s3cret-Pa55word"
FAST = RetryPolicy(attempts=4, initial=0.01, max=0.05, deadline=10, retry_after_cap=0.3)


# -- a scripted HTTP stub on loopback ----------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    truncate_to: int | None = None  # send fewer bytes than Content-Length says


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Stub:
    """Answers each path from a queue of replies (the last one repeats); records every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.route("POST", "/api/v4/token-auth/", Reply(200, {"id": 1, "token": "tok-1"}))
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with stub.lock:
                    stub.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                    queue = stub.routes.get((self.command, self.path.split("?")[0]))
                    reply = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else Reply(404)
                if callable(reply.body):
                    reply = reply.body(self, body)
                time.sleep(reply.delay)
                payload = (
                    reply.body
                    if isinstance(reply.body, bytes)
                    else json.dumps(reply.body if reply.body is not None else {}).encode()
                )
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                if reply.truncate_to is not None:
                    self.send_header("Connection", "close")
                    payload = payload[: reply.truncate_to]
                    self.close_connection = True
                try:
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (read timeout tests): expected

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def route(self, method: str, path: str, *replies: Reply) -> None:
        with self.lock:
            self.routes[(method, path)] = list(replies)

    def count(self, method: str, path: str) -> int:
        return sum(1 for s in self.seen if s.method == method and s.path.split("?")[0] == path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub()
    yield s
    s.close()


def make_api(stub: Stub, events: list[RetryEvent] | None = None, **kw: Any) -> PlatformAPI:
    kw.setdefault("retry", FAST)
    kw.setdefault("timeouts", Timeouts(connect=2, read=2))
    return PlatformAPI(
        stub.url, "robot", PASSWORD, on_retry=events.append if events is not None else None, **kw
    )


META = "/api/v1/master-data/file-upload/7/"
CREATE = "/api/v4/processing/actions/"
UPLOAD = "/api/v4/processing/upload/"
LOGIN = "/api/v4/token-auth/"


# -- pure parts ----------------------------------------------------------------------------------


def test_parse_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(30, abs=1.5)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


def test_call_with_retry_stops_after_attempts_with_last_cause() -> None:
    calls = []
    events: list[RetryEvent] = []

    def fail() -> None:
        calls.append(1)
        raise RetryableFailure(f"503 Service Unavailable #{len(calls)}", status=503)

    with pytest.raises(TransientError) as info:
        call_with_retry(fail, policy=FAST, call="GET /x/", target="http://h", on_retry=events.append)
    assert len(calls) == 4
    assert info.value.status == 503
    assert "4 attempts" in str(info.value) and "#4" in str(info.value)
    assert [e.attempt for e in events] == [1, 2, 3]
    assert all(0 <= e.wait <= FAST.max for e in events)
    assert events[0].call == "GET /x/"


def test_connection_failures_become_unreachable() -> None:
    def fail() -> None:
        raise RetryableFailure("Connection refused", connection=True)

    with pytest.raises(UnreachableError, match=r"cannot reach http://h : Connection refused"):
        call_with_retry(fail, policy=FAST, call="GET /x/", target="http://h")


def test_deadline_stops_before_attempts_run_out() -> None:
    calls = []
    policy = RetryPolicy(attempts=100, initial=0.2, max=0.2, jitter=False, deadline=0.5)

    def fail() -> None:
        calls.append(1)
        raise RetryableFailure("502 Bad Gateway", status=502)

    with pytest.raises(TransientError):
        call_with_retry(fail, policy=policy, call="GET /x/", target="http://h")
    assert 2 <= len(calls) <= 3  # the deadline, not the 100 attempts, ended it


def test_deadline_counts_the_first_attempt_too() -> None:
    calls = []
    policy = RetryPolicy(attempts=100, initial=0.1, max=0.1, jitter=False, deadline=0.35)

    def slow_fail() -> None:
        calls.append(1)
        time.sleep(0.3)  # the attempt itself takes time (a slow answer), not a wait for something
        raise RetryableFailure("502 Bad Gateway", status=502)

    with pytest.raises(TransientError, match="after 1 attempt:"):
        call_with_retry(slow_fail, policy=policy, call="GET /x/", target="http://h")
    assert len(calls) == 1


def test_other_exceptions_are_not_retried() -> None:
    calls = []

    def fail() -> None:
        calls.append(1)
        raise PermanentError("400 Bad Request", status=400)

    with pytest.raises(PermanentError):
        call_with_retry(fail, policy=FAST, call="GET /x/", target="http://h")
    assert len(calls) == 1


def test_retry_after_is_a_floor_and_capped() -> None:
    events: list[RetryEvent] = []
    calls = []
    policy = RetryPolicy(attempts=2, initial=0.001, max=0.001, retry_after_cap=0.2)

    def once() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise RetryableFailure("429 Too Many Requests", status=429, retry_after=1000)
        return "ok"

    assert call_with_retry(once, policy=policy, call="c", target="t", on_retry=events.append) == "ok"
    assert events[0].wait == pytest.approx(0.2)


# -- the client against a stub -------------------------------------------------------------------


def test_502_then_200_succeeds(stub: Stub) -> None:
    stub.route(
        "GET",
        META,
        Reply(502),
        Reply(200, {"id": 7, "file": "/media/a.jpg", "size": 3, "original_filename": "a.jpg"}),
    )
    events: list[RetryEvent] = []
    with make_api(stub, events) as api:
        meta = api.file_meta(7)
    assert meta.url == f"{stub.url}/media/a.jpg"
    assert (meta.original_filename, meta.size) == ("a.jpg", 3)
    assert stub.count("GET", META) == 2
    assert len(events) == 1 and "502" in events[0].reason


def test_400_is_permanent_after_one_request_with_the_body(stub: Stub) -> None:
    stub.route("POST", CREATE, Reply(400, {"files": ['Invalid pk "9" - object does not exist.']}))
    with make_api(stub) as api, pytest.raises(PermanentError) as info:
        api.create_scan({"files": [9]}, "uid-1")
    assert str(info.value) == (
        "400 Bad Request from POST /api/v4/processing/actions/: "
        'files: Invalid pk "9" - object does not exist.'
    )
    assert info.value.status == 400 and "Invalid pk" in (info.value.body or "")
    assert stub.count("POST", CREATE) == 1


def test_500_is_permanent(stub: Stub) -> None:
    stub.route("GET", "/api/v4/processing/actions/5/", Reply(500, b"boom"))
    with make_api(stub) as api, pytest.raises(PermanentError, match="500"):
        api.scan_detail(5)
    assert stub.count("GET", "/api/v4/processing/actions/5/") == 1


def test_429_retry_after_is_honoured_and_capped(stub: Stub) -> None:
    stub.route(
        "GET", META, Reply(429, headers={"Retry-After": "3600"}), Reply(200, {"id": 7, "file": "http://x/a"})
    )
    events: list[RetryEvent] = []
    start = time.monotonic()
    with make_api(stub, events) as api:
        api.file_meta(7)
    elapsed = time.monotonic() - start
    assert events[0].wait == pytest.approx(FAST.retry_after_cap)
    assert elapsed >= FAST.retry_after_cap  # waited the cap, not the hour (the wait above says so)


def test_wrong_password_fails_after_one_request(stub: Stub) -> None:
    stub.route(
        "POST", LOGIN, Reply(400, {"non_field_errors": ["Unable to log in with provided credentials."]})
    )
    api = make_api(stub)
    with pytest.raises(AuthError) as info:
        api.login()
    assert stub.count("POST", LOGIN) == 1
    assert "Unable to log in with provided credentials." in str(info.value)
    assert PASSWORD not in str(info.value) and PASSWORD not in repr(api)


def test_login_sends_credentials_and_token_is_used(stub: Stub) -> None:
    stub.route("GET", META, Reply(200, {"id": 7, "file": "http://x/a"}))
    with make_api(stub) as api:
        api.file_meta(7)  # logs in lazily
    login = next(s for s in stub.seen if s.path == LOGIN)
    assert json.loads(login.body) == {"username": "robot", "password": PASSWORD}
    meta = next(s for s in stub.seen if s.path == META)
    assert meta.headers["Authorization"] == "Token tok-1"


def test_401_mid_run_relogs_in_once_across_threads(stub: Stub) -> None:
    tokens = iter(["tok-1", "tok-2", "tok-3"])
    stub.route("POST", LOGIN, Reply(200, lambda h, b: Reply(200, {"token": next(tokens)})))

    def meta(handler: BaseHTTPRequestHandler, body: bytes) -> Reply:
        if handler.headers["Authorization"] == "Token tok-2":
            return Reply(200, {"id": 7, "file": "http://x/a"})
        return Reply(401, {"detail": "Invalid token."}, delay=0.05)

    stub.route("GET", META, Reply(200, meta))
    api = make_api(stub)
    api.login()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            api.file_meta(7)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert stub.count("POST", LOGIN) == 2  # the first login and ONE re-login


def test_second_401_is_auth_error(stub: Stub) -> None:
    stub.route("GET", META, Reply(401, {"detail": "Invalid token."}))
    with make_api(stub) as api, pytest.raises(AuthError):
        api.file_meta(7)
    assert stub.count("POST", LOGIN) == 2
    assert stub.count("GET", META) == 2


def test_attempts_stop_with_transient_error(stub: Stub) -> None:
    stub.route("GET", META, Reply(503))
    with make_api(stub) as api, pytest.raises(TransientError, match="4 attempts") as info:
        api.file_meta(7)
    assert info.value.status == 503
    assert stub.count("GET", META) == 4


def test_unreachable_after_retries() -> None:
    api = PlatformAPI("http://127.0.0.1:9", "robot", PASSWORD, retry=FAST)
    with pytest.raises(UnreachableError, match=r"cannot reach http://127.0.0.1:9 : ") as info:
        api.login()
    assert PASSWORD not in str(info.value)


def test_login_5xx_is_unreachable(stub: Stub) -> None:
    stub.route("POST", LOGIN, Reply(503))
    with pytest.raises(UnreachableError, match="503"):
        make_api(stub).login()
    assert stub.count("POST", LOGIN) == 4


def test_upload_streams_multipart_with_length(stub: Stub) -> None:
    stub.route("POST", UPLOAD, Reply(503), Reply(201, {"id": 99}))  # 503: not taken, so resent
    data = bytes(range(256)) * 5000  # > one chunk
    with make_api(stub) as api:
        new_id = api.upload(
            io.BytesIO(data),
            'we"ird.jpg',
            input_type="image",
            store=8,
            checksum=hashlib.sha256(data).hexdigest(),
            content_type="image/jpeg",
        )
    assert new_id == 99
    sent = [s for s in stub.seen if s.path == UPLOAD]
    assert len(sent) == 2
    last = sent[-1]
    assert int(last.headers["Content-Length"]) == len(last.body)
    assert "Transfer-Encoding" not in last.headers
    assert sent[0].body == last.body.replace(
        last.body[2:34], sent[0].body[2:34]
    )  # same content on the retry, only the boundary differs
    from email.parser import BytesParser
    from email.policy import HTTP

    msg = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + last.headers["Content-Type"].encode() + b"\r\n\r\n" + last.body
    )
    parts = {p.get_param("name", header="content-disposition"): p for p in msg.iter_parts()}
    assert parts["file"].get_payload(decode=True) == data
    assert parts["file"].get_content_type() == "image/jpeg"
    assert parts["input_type"].get_content() == "image"
    assert parts["store"].get_content() == "8"
    assert parts["checksum"].get_content() == hashlib.sha256(data).hexdigest()


def test_upload_not_retried_after_read_timeout(stub: Stub) -> None:
    stub.route("POST", UPLOAD, Reply(201, {"id": 1}, delay=1.0))
    api = make_api(stub, timeouts=Timeouts(connect=2, read=0.3))
    with pytest.raises(TransientError, match="may have acted on it, so it is not resent"):
        api.upload(io.BytesIO(b"abc"), "a.jpg")
    assert stub.count("POST", UPLOAD) == 1


def test_create_retried_after_read_timeout_with_the_same_uid(stub: Stub) -> None:
    stub.route("POST", CREATE, Reply(201, {"id": 1}, delay=1.0), Reply(424), Reply(201, {"id": 5}))
    api = make_api(stub, timeouts=Timeouts(connect=2, read=0.3))
    assert api.create_scan({"store": 8}, "uid-42") == 5
    uids = {s.headers["REB-CLIENT-REQUEST-UID"] for s in stub.seen if s.path == CREATE}
    assert uids == {"uid-42"}
    assert stub.count("POST", CREATE) == 3


def test_download_without_token_and_retry_on_short_body(stub: Stub) -> None:
    data = b"\x89PNG" + bytes(300_000)
    stub.route(
        "GET",
        "/media/a.png",
        Reply(200, data, truncate_to=1000),
        Reply(200, data, headers={"Content-Type": "image/png"}),
    )
    dest = io.BytesIO()
    with make_api(stub) as api:
        api.login()
        result = api.download(f"{stub.url}/media/a.png?X-Signature=abc", dest)
    assert dest.getvalue() == data
    assert result.bytes == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.content_type == "image/png"
    downloads = [s for s in stub.seen if s.path.startswith("/media/")]
    assert len(downloads) == 2
    assert all("Authorization" not in s.headers for s in downloads)


def test_download_404_is_permanent_and_hides_the_signature(stub: Stub) -> None:
    with make_api(stub) as api, pytest.raises(PermanentError) as info:
        api.download(f"{stub.url}/media/none.png?X-Signature=abc", io.BytesIO())
    assert "X-Signature" not in str(info.value) and "404" in str(info.value)


def test_password_never_in_messages(stub: Stub) -> None:
    stub.route("POST", LOGIN, Reply(401, {"detail": f"bad password {PASSWORD}"}))
    with pytest.raises(AuthError) as info:
        make_api(stub).login()
    assert PASSWORD not in str(info.value)
    assert PASSWORD not in repr(info.value.args)


# -- the HTTP transport under the client ---------------------------------------------------------


def test_gzip_answers_are_decoded_and_the_client_names_itself(stub: Stub) -> None:
    import gzip

    from scanjobs import __version__

    stub.route(
        "GET",
        META,
        Reply(
            200,
            gzip.compress(json.dumps({"id": 7, "file": "/media/x.png"}).encode()),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        ),
    )
    with make_api(stub) as api:
        assert api.file_meta(7).url == f"{stub.url}/media/x.png"
    assert {s.headers["User-Agent"] for s in stub.seen} == {f"scanjobs/{__version__}"}


def test_calls_go_through_the_http_proxy_of_the_environment(
    stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stub plays the proxy: a proxied request names the whole URL on its request line.
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", stub.url)
    platform = "http://platform.invalid"
    stub.route("POST", f"{platform}/api/v4/token-auth/", Reply(200, {"id": 1, "token": "tok-9"}))
    stub.route("GET", f"{platform}{META}", Reply(200, {"id": 7, "file": "/media/x.png"}))
    with PlatformAPI(platform, "robot", PASSWORD, retry=FAST) as api:
        assert api.file_meta(7).url == f"{platform}/media/x.png"
    assert [s.path for s in stub.seen] == [f"{platform}/api/v4/token-auth/", f"{platform}{META}"]
    assert stub.seen[-1].headers["Authorization"] == "Token tok-9"


def test_storage_urls_are_quoted_before_sending(stub: Stub) -> None:
    stub.route("GET", "/media/a%20b.png", Reply(200, b"\x89PNG"))
    with make_api(stub) as api:
        assert api.download(f"{stub.url}/media/a b.png", io.BytesIO()).bytes == 4


def test_a_connection_dropped_before_the_answer_is_retried_for_idempotent_calls(stub: Stub) -> None:
    def drop(handler: Any, body: bytes) -> Reply:
        handler.close_connection = True
        handler.connection.shutdown(2)  # no answer at all: the client sees the socket close
        raise ConnectionAbortedError

    stub.route("GET", META, Reply(body=drop), Reply(200, {"id": 7, "file": "/media/x.png"}))
    events: list[RetryEvent] = []
    with make_api(stub, events) as api:
        assert api.file_meta(7).id == 7
    assert stub.count("GET", META) == 2 and len(events) == 1


def test_a_host_whose_pool_the_adapter_dropped_for_another_is_reached_again() -> None:
    from scanjobs.platform.http import Transport

    stubs = [Stub() for _ in range(3)]
    try:
        for s in stubs:
            s.route("GET", "/ping", Reply(200, {"ok": True}))
        http = Transport(pool_size=2, hosts=2)  # room for two hosts' pools: the third evicts the first
        for s in [*stubs, stubs[0]]:
            assert http.request("GET", f"{s.url}/ping", headers={}, timeout=(2, 2), limit=10).json() == {
                "ok": True
            }
        assert [s.count("GET", "/ping") for s in stubs] == [2, 1, 1]
        http.close()
    finally:
        for s in stubs:
            s.close()


def test_a_file_url_that_redirects_is_followed_and_the_token_stays_home(stub: Stub) -> None:
    other = Stub()  # another host: the storage a file URL redirects to
    try:
        data = b"\x89PNG" + bytes(1000)
        other.route("GET", "/bucket/a.png", Reply(200, data, headers={"Content-Type": "image/png"}))
        stub.route("GET", "/media/a.png", Reply(302, b"", headers={"Location": "/media/b.png"}))
        elsewhere = f"{other.url}/bucket/a.png?sig=1"
        stub.route("GET", "/media/b.png", Reply(307, b"", headers={"Location": elsewhere}))
        stub.route("GET", META, Reply(301, b"", headers={"Location": f"{other.url}{META}"}))
        other.route("GET", META, Reply(200, {"id": 7, "file": "/bucket/a.png"}))
        with make_api(stub) as api:
            dest = io.BytesIO()
            assert api.download(f"{stub.url}/media/a.png", dest).content_type == "image/png"
            assert dest.getvalue() == data
            assert api.file_meta(7).url == f"{stub.url}/bucket/a.png"
        moved = [s for s in other.seen if s.path.startswith(META)]
        assert len(moved) == 1 and "Authorization" not in moved[0].headers
        stub.route("GET", "/loop", Reply(302, b"", headers={"Location": "/loop"}))
        with make_api(stub) as api, pytest.raises(PermanentError, match="more than 5 redirects"):
            api.download(f"{stub.url}/loop", io.BytesIO())
        assert stub.count("GET", "/loop") == 6  # once and five redirects: a loop is not retried
    finally:
        other.close()


def test_a_slot_is_held_during_each_attempt_and_free_while_waiting_to_retry(stub: Stub) -> None:
    slot = threading.BoundedSemaphore(1)
    free_while_waiting: list[bool] = []

    def on_retry(event: RetryEvent) -> None:  # called before each backoff sleep
        free = slot.acquire(blocking=False)
        if free:
            slot.release()
        free_while_waiting.append(free)

    free_during_requests: list[bool] = []

    def busy_during_the_request(handler: Any, body: bytes) -> Reply:
        free = slot.acquire(blocking=False)
        if free:
            slot.release()
        free_during_requests.append(free)
        return Reply(503 if not free_while_waiting else 200, {"id": 7, "file": "/x.png"})

    stub.route("GET", META, Reply(body=busy_during_the_request))
    api = PlatformAPI(stub.url, "robot", PASSWORD, retry=FAST, on_retry=on_retry)
    assert api.file_meta(7, slot=slot).id == 7
    assert free_during_requests == [False, False] and free_while_waiting == [True]
    assert slot.acquire(blocking=False)  # and given back at the end

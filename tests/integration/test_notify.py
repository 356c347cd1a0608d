"""Notifications at the end of a run, received by a local HTTP server (issue 15, point 5): the
summary arrives, no secret does, and a notification that fails is a warning that leaves the
run's exit code as it was."""

from __future__ import annotations

import json
import socket
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from scanjobs.cli import main
from scanjobs.jobfile.env import read_dotenv
from scanjobs.sandbox import Sandbox
from scanjobs.sandboxjobs import write_sandbox_instances

pytestmark = pytest.mark.integration


class Receiver:
    """An HTTP server on 127.0.0.1 (a free port) that keeps what each POST sent."""

    def __init__(self) -> None:
        received: list[tuple[str, str, str]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                received.append((self.path, self.headers.get("Content-Type", ""), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _job(folder: Path, sb: Sandbox, notify: list[str]) -> Path:
    write_sandbox_instances(sb.info, folder)
    path = folder / "download.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        version: 1
        mode: download
        name: nightly-images
        source: sandbox-source
        scans: {{ids: {sb.info["source_scan_ids"][:3]}}}
        notify: {json.dumps(notify)}
        output: images
        """)
    )
    return path


def _secrets(folder: Path) -> list[str]:
    values = [v for v in read_dotenv(folder / ".env").values() if v]
    assert len(values) >= 2  # the sandbox's passwords
    return values


def test_the_summary_reaches_a_local_receiver_without_a_secret(
    sandbox: Sandbox,
    tmp_path: Path,
    receiver: Receiver,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """issue 15, acceptance: a notification reaches a local receiver with the summary and no secret."""
    monkeypatch.setenv("HOOK_URL", f"json://127.0.0.1:{receiver.port}/hooks/qa")
    path = _job(tmp_path, sandbox, ["${HOOK_URL}", f"form://127.0.0.1:{receiver.port}/hooks/form"])
    assert main(["run", str(path), "--json"]) == 0
    out = capsys.readouterr()
    events = [json.loads(line) for line in out.out.splitlines()]
    summary = next(e["text"] for e in events if e["event"] == "summary")
    assert [e["message"] for e in events if e["event"] == "info" and "notified" in e["message"]] == [
        "notified notify[0] (json)",
        "notified notify[1] (form)",
    ]
    assert events[-1]["event"] == "run_finished"  # the notifications come before it

    by_path = {p: (kind, body) for p, kind, body in receiver.received}
    assert set(by_path) == {"/hooks/qa", "/hooks/form"}
    sent = json.loads(by_path["/hooks/qa"][1])
    assert sent["title"] == "scanjobs download job nightly-images: ok (exit 0)"
    assert sent["message"] == summary and sent["type"] == "success"
    assert "nightly-images" in by_path["/hooks/form"][1]
    for secret in _secrets(tmp_path):
        assert all(secret not in body for _, _, body in receiver.received)
        assert secret not in out.out + out.err


def test_a_failed_notification_is_a_warning_and_the_exit_code_stays(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _closed_port()
    monkeypatch.setenv("HOOK_URL", f"json://127.0.0.1:{port}/hooks/qa?token=s3cr3t-t0ken")
    path = _job(tmp_path, sandbox, ["${HOOK_URL}"])
    assert main(["run", str(path), "--json"]) == 0
    out = capsys.readouterr()
    warnings = [
        json.loads(line)["message"] for line in out.out.splitlines() if json.loads(line)["event"] == "warning"
    ]
    assert len(warnings) == 1 and warnings[0].startswith("notification to notify[0] (json) failed: ")
    assert "s3cr3t-t0ken" not in out.out + out.err
    assert str(port) not in warnings[0]  # the URL is a secret, its parts too


def test_a_run_that_stops_says_why_and_leaks_no_secret(
    sandbox: Sandbox,
    tmp_path: Path,
    receiver: Receiver,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refused database login (exit 5) is notified too, without the password that was refused."""
    path = _job(tmp_path, sandbox, [f"json://127.0.0.1:{receiver.port}/hooks/qa"])
    monkeypatch.setenv("SANDBOX_SOURCE_DB_PASSWORD", "wrong-Pa55word")
    assert main(["run", str(path), "-q"]) == 5
    capsys.readouterr()
    (sent,) = [json.loads(body) for _, _, body in receiver.received]
    assert sent["title"] == "scanjobs download job nightly-images: unreachable (exit 5)"
    assert sent["message"].startswith("stopped by ") and sent["type"] == "failure"
    assert "wrong-Pa55word" not in json.dumps(sent)

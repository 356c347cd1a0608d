"""The platform's own public client, rebotics-sdk 0.31.1, against the sandbox: the platform's voice in CI.

scanjobs and the sandbox were both built from the legacy scripts, so they can share a mistake;
the client is an independent witness (issue 13). When a test here and the sandbox disagree, the
sandbox is wrong (each test says which point of issue 13 made the sandbox agree).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import io
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from copy_support import scans_in_store
from rebotics_sdk.providers import RetailerProvider
from rebotics_sdk.providers.base import ProviderHTTPClientException

from scanjobs.sandbox import Sandbox
from scanjobs.sandbox.images import PNG_SIGNATURE

pytestmark = [pytest.mark.contract, pytest.mark.integration]


def _client_statuses() -> dict[str, str]:
    """PROCESSING_STATUSES of the client's CLI (rebotics_sdk/cli/retailer.py), read from its
    source: importing the CLI needs the client's `shell` extra (click, pandas, prettytable...)."""
    spec = importlib.util.find_spec("rebotics_sdk")
    assert spec is not None and spec.submodule_search_locations
    source = Path(next(iter(spec.submodule_search_locations))) / "cli" / "retailer.py"
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "PROCESSING_STATUSES" for t in node.targets
        ):
            return dict(ast.literal_eval(node.value))
    raise AssertionError(f"no PROCESSING_STATUSES in {source}")


STATUSES = frozenset(_client_statuses().values())
# The statuses at which the client's renderer (cli/renderers.py, PacSerializer.time_in_queue)
# stops counting a scan's time in the queue: the finished ones.
FINISHED = frozenset({"done", "error", "interrupted"})
DEADLINE = 60.0  # seconds for a created scan to finish (the shared sandbox processes in 0.5 s)


def client(sb: Sandbox, instance: str) -> RetailerProvider:
    """A client logged in as the client logs in (token_auth), retrying 424/502/503 quickly."""
    info = sb.info["instances"][instance]
    provider = RetailerProvider(info["api_url"], retries=3, timeout=30)
    # the client waits 5 s between retries; its proxies take the delay from proxy_config
    provider.proxy_config = {**RetailerProvider.proxy_config, "retry_delay": 0.2}
    provider.token_auth(info["username"], info["password"])
    return provider


def image(tag: str) -> bytes:
    """Bytes the sandbox takes for a PNG (it sniffs the signature), unique per `tag`."""
    return PNG_SIGNATURE + hashlib.sha256(tag.encode()).digest() * 64


def upload_without_checksum(sb: Sandbox, provider: RetailerProvider, store: int, tag: str) -> int:
    """A file uploaded as the legacy scripts did (no checksum), so that the tests of the create
    and the detail do not depend on the upload's contract, which its own test holds."""
    response = requests.post(
        f"{sb.target_api}/api/v4/processing/upload/",
        headers={"Authorization": provider.headers["Authorization"]},
        data={"input_type": "image", "store": str(store)},
        files={"file": (f"{tag}.png", image(tag))},
        timeout=30,
    )
    response.raise_for_status()
    return int(response.json()["id"])


@pytest.fixture
def target(sandbox: Sandbox) -> tuple[RetailerProvider, int]:
    """A client of the target and a fresh store of it."""
    return client(sandbox, "target"), sandbox.new_target_store()


def follow(provider: RetailerProvider, scan_id: int) -> tuple[dict[str, Any], list[str]]:
    """Poll the scan's detail until it is finished (deadline DEADLINE): the last detail, and every
    status seen on the way."""
    seen: list[str] = []
    end = time.monotonic() + DEADLINE
    delay = 0.05
    while True:
        detail = dict(provider.processing_action_detail(scan_id))
        seen.append(detail["status"])
        if detail["status"] in FINISHED:
            return detail, seen
        assert time.monotonic() < end, f"scan {scan_id} not finished after {DEADLINE}s: {seen}"
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def create(
    provider: RetailerProvider, store: int, files: list[int], uid: str | None = None
) -> dict[str, Any]:
    """The client's create; `_request_uid` is how it is given its REB-CLIENT-REQUEST-UID."""
    extra = {"_request_uid": uid} if uid else {}
    return dict(provider.create_processing_action(store, files, "image", **extra))


def test_the_finished_statuses_are_the_clients() -> None:
    assert FINISHED <= STATUSES and len(STATUSES) == 5, STATUSES


def test_login_gives_a_token_the_client_uses(sandbox: Sandbox) -> None:
    """issue 13, contract: login, then an authorised call; a wrong password is a client error."""
    provider = client(sandbox, "source")
    scan_id = sandbox.info["source_scan_ids"][0]
    assert provider.processing_action_detail(scan_id)["id"] == scan_id
    info = sandbox.info["instances"]["source"]
    with pytest.raises(ProviderHTTPClientException) as refused:
        RetailerProvider(info["api_url"], retries=0).token_auth(info["username"], "wrong")
    assert refused.value.response.status_code == 400


def test_upload_with_the_clients_md5_checksum(sandbox: Sandbox, target: tuple[RetailerProvider, int]) -> None:
    """issue 13, contract: the client's upload (its MD5 checksum) is taken, and the file is usable."""
    provider, store = target
    uploaded = provider.processing_upload(store, io.BytesIO(image("md5")), "image")
    assert isinstance(uploaded["id"], int)
    scan = create(provider, store, [uploaded["id"]])
    assert follow(provider, scan["id"])[0]["status"] in FINISHED


def test_create_twice_with_one_uid_makes_one_scan(
    sandbox: Sandbox, target: tuple[RetailerProvider, int]
) -> None:
    """issue 13, contract: the same REB-CLIENT-REQUEST-UID again answers the same scan."""
    provider, store = target
    files = [upload_without_checksum(sandbox, provider, store, f"uid-{n}") for n in range(2)]
    uid = str(uuid.uuid4())
    first, again = create(provider, store, files, uid), create(provider, store, files, uid)
    assert first["id"] == again["id"]
    assert list(scans_in_store(sandbox, store)) == [first["id"]]


def test_concurrent_creates_with_one_uid_make_one_scan(
    sandbox: Sandbox, target: tuple[RetailerProvider, int]
) -> None:
    """issue 13, contract: a repeat while the first is in progress is answered 424, which the
    client retries, and gets the first one's scan."""
    provider, store = target
    files = [upload_without_checksum(sandbox, provider, store, "concurrent")]
    uid = str(uuid.uuid4())
    answers: list[int] = []
    errors: list[BaseException] = []

    def go() -> None:
        try:
            answers.append(int(create(client(sandbox, "target"), store, files, uid)["id"]))
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    assert not errors and len(answers) == 4 and len(set(answers)) == 1, (answers, errors)
    assert list(scans_in_store(sandbox, store)) == answers[:1]


def test_detail_reaches_a_finished_status(sandbox: Sandbox, target: tuple[RetailerProvider, int]) -> None:
    """issue 13, contract: a created scan ends in one of the statuses the client treats as finished."""
    provider, store = target
    scan = create(provider, store, [upload_without_checksum(sandbox, provider, store, "finish")])
    detail, _ = follow(provider, scan["id"])
    assert detail["id"] == scan["id"] and detail["status"] in FINISHED


def test_every_status_belongs_to_the_clients_list(
    sandbox: Sandbox, target: tuple[RetailerProvider, int]
) -> None:
    """issue 13, contract: from the create's answer to the end, only the client's statuses."""
    provider, store = target
    scan = create(provider, store, [upload_without_checksum(sandbox, provider, store, "statuses")])
    _, seen = follow(provider, scan["id"])
    assert set([scan["status"], *seen]) <= STATUSES, [scan["status"], *seen]


def test_detail_has_what_the_clients_renderer_reads(
    sandbox: Sandbox, target: tuple[RetailerProvider, int]
) -> None:
    """issue 13, contract: the fields the client's renderer (cli/renderers.py) reads of a detail."""
    provider, store = target
    files = [upload_without_checksum(sandbox, provider, store, f"detail-{n}") for n in range(2)]
    detail, _ = follow(provider, create(provider, store, files)["id"])
    assert detail["store_id"] == store and detail["store"]["id"] == store, detail
    # the client's `processing-action copy` sends a detail's inputs ids back as a create's files
    assert [i["id"] for i in detail["inputs"]] == files and all("file" in i for i in detail["inputs"])
    for name in ("created", "processing_start_time", "processing_finish_time"):
        datetime.fromisoformat(detail[name].replace("Z", "+00:00"))  # the client parses them

"""The sandbox's uploads as the platform's client sends them: an MD5 checksum and a request uid (issue 13)."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from test_sandbox import query, token, upload

from scanjobs.sandbox import Sandbox

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def auth(sandbox: Sandbox) -> dict[str, str]:
    return token(sandbox, "target")


def stored_checksum(sb: Sandbox, file_id: int) -> Any:
    rows = query(
        sb, "target", "SELECT checksum FROM master_data_implementation_fileupload WHERE id = %s", file_id
    )
    return rows[0][0]


def test_an_md5_checksum_is_verified_and_stored(sandbox: Sandbox, auth: dict[str, str]) -> None:
    """Issue 13, point 1: the client's `hash_file` is MD5 hex of the bytes; the sandbox checked SHA-256."""
    data = b"\xff\xd8\xff\xe0" + os.urandom(300)
    md5 = hashlib.md5(data).hexdigest()
    sandbox.reset_stats()
    r = upload(sandbox, auth, data, checksum=md5)
    assert r.status_code == 201, r.text
    assert stored_checksum(sandbox, r.json()["id"]) == md5
    assert sandbox.stats("target")["checksums_verified"] == 1
    # the legacy scripts sent no checksum: still accepted, and the file's MD5 is stored all the same
    r = upload(sandbox, auth, data)
    assert r.status_code == 201, r.text
    assert stored_checksum(sandbox, r.json()["id"]) == md5
    assert sandbox.stats("target")["checksums_verified"] == 1


@pytest.mark.parametrize(
    "wrong",
    [
        pytest.param(lambda data: hashlib.sha256(data).hexdigest(), id="sha256"),
        pytest.param(lambda data: hashlib.md5(data + b"x").hexdigest(), id="other-bytes"),
        pytest.param(lambda data: "not hex at all \u00e9", id="garbage"),
    ],
)
def test_a_wrong_checksum_is_refused(sandbox: Sandbox, auth: dict[str, str], wrong: Any) -> None:
    """Issue 13, point 1: a checksum that is not the MD5 of the bytes is a 400, and stores nothing."""
    data = b"\xff\xd8\xff\xe0" + os.urandom(300)
    before = query(sandbox, "target", "SELECT max(id) FROM master_data_implementation_fileupload")[0][0]
    r = upload(sandbox, auth, data, checksum=wrong(data))
    assert r.status_code == 400 and list(r.json()) == ["checksum"], r.text
    after = query(sandbox, "target", "SELECT max(id) FROM master_data_implementation_fileupload")[0][0]
    assert after == before


def test_seeded_files_carry_the_md5_of_their_bytes(sandbox: Sandbox) -> None:
    """Issue 13, point 1: the file table's `checksum` is MD5, seeded files included."""
    inst = sandbox.info["instances"]["source"]
    headers = token(sandbox, "source")
    rows = query(sandbox, "source", "SELECT id, checksum FROM master_data_implementation_fileupload LIMIT 3")
    for file_id, checksum in rows:
        meta = requests.get(
            f"{inst['api_url']}/api/v1/master-data/file-upload/{file_id}/", headers=headers, timeout=10
        ).json()
        assert hashlib.md5(requests.get(meta["file"], timeout=10).content).hexdigest() == checksum


def upload_with_uid(
    sb: Sandbox, auth: dict[str, str], data: bytes, uid: str, **form: Any
) -> requests.Response:
    return upload(sb, {**auth, "REB-CLIENT-REQUEST-UID": uid}, data, **form)


def test_an_upload_uid_answers_the_first_file_again(sandbox: Sandbox, auth: dict[str, str]) -> None:
    """Issue 13, point 4: the client sends REB-CLIENT-REQUEST-UID with every POST, uploads too;
    the sandbox honours it as it does a create's: the same uid gives the file it stored first."""
    data = b"\xff\xd8\xff\xe0" + os.urandom(300)
    uid = str(uuid.uuid4())
    sandbox.reset_stats()
    first = upload_with_uid(sandbox, auth, data, uid, checksum=hashlib.md5(data).hexdigest())
    again = upload_with_uid(sandbox, auth, data + b"more", uid)
    assert first.status_code == 201 and again.status_code == 201, (first.text, again.text)
    assert again.json() == first.json()
    assert sandbox.stats("target")["files_uploaded"] == 1
    other = upload_with_uid(sandbox, auth, data, str(uuid.uuid4()))
    plain = [upload(sandbox, auth, data).json()["id"] for _ in range(2)]
    assert len({first.json()["id"], other.json()["id"], *plain}) == 4
    # a refused upload is not remembered: its uid may be sent again, right this time
    refused = str(uuid.uuid4())
    assert upload_with_uid(sandbox, auth, data, refused, checksum="0" * 32).status_code == 400
    assert upload_with_uid(sandbox, auth, data, refused).status_code == 201


def test_one_upload_uid_sent_at_once_stores_one_file(sandbox: Sandbox, auth: dict[str, str]) -> None:
    """Issue 13, point 4: while the first request with a uid runs, the others get 424."""
    data = b"\xff\xd8\xff\xe0" + os.urandom(3 * 1024**2)  # long enough to be in flight together
    uid = str(uuid.uuid4())
    barrier = threading.Barrier(6)
    results: list[tuple[int, Any]] = []

    def send() -> None:
        barrier.wait()
        r = upload_with_uid(sandbox, auth, data, uid)
        results.append((r.status_code, r.json()))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(status in (201, 424) for status, _ in results), results
    assert len({body["id"] for status, body in results if status == 201}) == 1, results


@pytest.mark.parametrize("path", ["/api/v4/processing/upload/", "/api/v4/processing/actions/"])
def test_a_uid_too_long_to_remember_is_a_400(sandbox: Sandbox, auth: dict[str, str], path: str) -> None:
    """Hostile input: a uid the sandbox cannot keep is refused, not a 500 (nor forgotten)."""
    file_id = upload(sandbox, auth, b"\xff\xd8\xff\xe0").json()["id"]
    headers = {**auth, "REB-CLIENT-REQUEST-UID": "u" * 300}
    if path.endswith("upload/"):
        r = upload(sandbox, headers, b"\xff\xd8\xff\xe0")
    else:
        payload = {"store": sandbox.info["target_store_id"], "files": [file_id], "input_type": "image"}
        r = requests.post(f"{sandbox.target_api}{path}", json=payload, headers=headers, timeout=10)
    assert r.status_code == 400 and "REB-CLIENT-REQUEST-UID" in r.text, r.text


@pytest.fixture
def forgetful(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The shared sandbox forgetting every uid once answered; remembering again afterwards."""
    sandbox.configure(forget_uids_after=0)
    try:
        yield sandbox
    finally:
        sandbox.configure(forget_uids_after=-1)


def test_a_forgotten_uid_makes_a_second_scan_and_file(forgetful: Sandbox, auth: dict[str, str]) -> None:
    """Issue 13, point 5: nothing says how long the platform remembers a uid; the sandbox can
    forget them (`forget_uids_after` seconds after the answer), so that tests can see a client
    that relies on an old uid make duplicates."""
    data = b"\xff\xd8\xff\xe0" + os.urandom(100)
    uid = str(uuid.uuid4())
    files = [upload_with_uid(forgetful, auth, data, uid).json()["id"] for _ in range(2)]
    assert files[0] != files[1]
    url = f"{forgetful.target_api}/api/v4/processing/actions/"
    payload = {"store": forgetful.info["target_store_id"], "files": files[:1], "input_type": "image"}
    headers = {**auth, "REB-CLIENT-REQUEST-UID": uid}
    scans = [requests.post(url, json=payload, headers=headers, timeout=10).json()["id"] for _ in range(2)]
    assert scans[0] != scans[1]
    forgetful.configure(forget_uids_after=-1)  # negative: remembered for ever (the default)
    uid = str(uuid.uuid4())
    headers = {**auth, "REB-CLIENT-REQUEST-UID": uid}
    scans = [requests.post(url, json=payload, headers=headers, timeout=10).json()["id"] for _ in range(2)]
    assert scans[0] == scans[1]
    assert len({upload_with_uid(forgetful, auth, data, uid).json()["id"] for _ in range(2)}) == 1

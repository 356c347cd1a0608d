"""The sandbox's uploads as the platform's client sends them: an MD5 checksum (issue 13, point 1)."""

from __future__ import annotations

import hashlib
import os
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

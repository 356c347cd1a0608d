"""PlatformAPI against the sandbox's real HTTP API: files, upload, idempotent create, faults."""

from __future__ import annotations

import io
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
import requests
from copy_support import uploads_in_store

from scanjobs.errors import AuthError, PermanentError, TransientError
from scanjobs.platform.api import PlatformAPI
from scanjobs.platform.db import PlatformDB
from scanjobs.platform.retry import RetryEvent, RetryPolicy, Timeouts
from scanjobs.sandbox import Sandbox
from scanjobs.sandbox.faults import SCRIPTED_UPLOAD
from scanjobs.sandbox.instance import TWO_FACTOR_USER

pytestmark = pytest.mark.integration

# Fast and patient: many quick retries, short timeouts so an injected hang costs little.
POLICY = RetryPolicy(attempts=10, initial=0.01, max=0.2, deadline=120, retry_after_cap=0.5)
TIMEOUTS = Timeouts(connect=5, read=3)


def _api(inst: dict[str, Any], **kw: Any) -> PlatformAPI:
    kw.setdefault("retry", POLICY)
    kw.setdefault("timeouts", TIMEOUTS)
    return PlatformAPI(inst["api_url"], inst["username"], inst["password"], **kw)


def _db(inst: dict[str, Any]) -> PlatformDB:
    db = inst["db"]
    return PlatformDB(db["host"], db["port"], db["dbname"], db["user"], db["password"])


@pytest.fixture
def source(sandbox: Any) -> Iterator[PlatformAPI]:
    with _api(sandbox.info["instances"]["source"]) as api:
        yield api


@pytest.fixture
def target(sandbox: Any) -> Iterator[PlatformAPI]:
    with _api(sandbox.info["instances"]["target"]) as api:
        yield api


@pytest.fixture
def source_db(sandbox: Any) -> Iterator[PlatformDB]:
    with _db(sandbox.info["instances"]["source"]) as db:
        yield db


def _checksum(sandbox: Any, file_id: int) -> str:
    """The checksum the source platform stored for a file (an independent, direct query)."""
    db = sandbox.info["instances"]["source"]["db"]
    with psycopg.connect(
        host=db["host"], port=db["port"], dbname=db["dbname"], user=db["user"],
        password=db["password"],
    ) as conn:  # fmt: skip
        row = conn.execute(
            "SELECT checksum FROM master_data_implementation_fileupload WHERE id = %s", (file_id,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def _requests_total(sandbox: Any, instance: str) -> int:
    return int(sandbox.stats(instance)["requests_total"])


def test_download_every_file_of_a_scan_matches_the_stored_checksum(
    sandbox: Any, source: PlatformAPI, source_db: PlatformDB
) -> None:
    scan = source_db.scans_with_files(sandbox.info["source_scan_ids"][:1])[0]
    assert scan.files
    for ref in scan.files:
        meta = source.file_meta(ref.file_id)
        assert meta.id == ref.file_id and meta.url.startswith("http://127.0.0.1")
        with tempfile.TemporaryFile() as dest:
            result = source.download(meta.url, dest)
            assert dest.tell() == result.bytes
        assert result.md5 == _checksum(sandbox, ref.file_id)
        if meta.size is not None:
            assert result.bytes == meta.size
        assert result.content_type in ("image/png", "image/jpeg")


def test_upload_then_create_is_idempotent_by_request_uid(
    sandbox: Any, source: PlatformAPI, target: PlatformAPI, source_db: PlatformDB
) -> None:
    store = sandbox.info["target_store_id"]
    ref = source_db.scans_with_files(sandbox.info["source_scan_ids"][:1])[0].files[0]
    meta = source.file_meta(ref.file_id)
    with tempfile.SpooledTemporaryFile(max_size=1 << 20) as buf:
        got = source.download(meta.url, buf)
        new_file = target.upload(
            buf, meta.original_filename or "image", input_type=ref.file_type or "image",
            store=store, checksum=got.md5, content_type=got.content_type,
        )  # fmt: skip
    created_before = sandbox.stats("target")["scans_created"]
    uid = str(uuid.uuid4())
    scan_id = target.create_scan({"store": store, "files": [new_file]}, uid)
    assert target.create_scan({"store": store, "files": [new_file]}, uid) == scan_id
    assert sandbox.stats("target")["scans_created"] == created_before + 1
    detail = target.scan_detail(scan_id)
    assert detail["id"] == scan_id and [i["id"] for i in detail["inputs"]] == [new_file]  # issue 13, point 7
    copied = target.file_meta(new_file)
    with io.BytesIO() as back:
        assert target.download(copied.url, back).sha256 == got.sha256


def test_wrong_password_is_one_request(sandbox: Any) -> None:
    inst = dict(sandbox.info["instances"]["target"], password="not-the-password-123")
    before = _requests_total(sandbox, "target")
    with pytest.raises(AuthError) as info:
        _api(inst).login()
    assert _requests_total(sandbox, "target") == before + 1
    assert "Unable to log in" in str(info.value)
    assert "not-the-password-123" not in str(info.value)


def test_invalid_file_in_payload_is_permanent_with_the_platform_message(
    sandbox: Any, target: PlatformAPI
) -> None:
    payload = {"store": sandbox.info["target_store_id"], "files": [987654321]}
    with pytest.raises(PermanentError) as info:
        target.create_scan(payload, str(uuid.uuid4()))
    assert info.value.status == 400
    assert str(info.value).startswith(
        "400 Bad Request from POST /api/v4/processing/actions/: files: Invalid pk"
    )
    assert "987654321" in str(info.value)


def test_missing_file_meta_is_404_permanent(target: PlatformAPI) -> None:
    with pytest.raises(PermanentError) as info:
        target.file_meta(987654321)
    assert info.value.status == 404


def test_idempotent_calls_survive_faults_from_many_threads(sandbox: Any, source_db: PlatformDB) -> None:
    store = sandbox.info["target_store_id"]
    refs = [f for s in source_db.scans_with_files(sandbox.info["source_scan_ids"]) for f in s.files]
    events: list[RetryEvent] = []
    src = _api(sandbox.info["instances"]["source"], on_retry=events.append)
    tgt = _api(sandbox.info["instances"]["target"], on_retry=events.append)
    # upload without faults: it is not retried after a read timeout, by design
    with tempfile.TemporaryFile() as buf:
        meta = src.file_meta(refs[0].file_id)
        src.download(meta.url, buf)
        new_file = tgt.upload(buf, "a.png", store=store)
    created_before = sandbox.stats("target")["scans_created"]
    uids = [str(uuid.uuid4()) for _ in range(8)]
    sandbox.configure(fault_rate=0.3)
    try:

        def fetch(file_id: int) -> str:
            with tempfile.TemporaryFile() as dest:
                return src.download(src.file_meta(file_id).url, dest).md5

        def create(uid: str) -> int:
            return tgt.create_scan({"store": store, "files": [new_file]}, uid)

        with ThreadPoolExecutor(8) as pool:
            digests = list(pool.map(fetch, [r.file_id for r in refs[:16]]))
            scan_ids = list(pool.map(create, uids + uids))  # each uid sent twice
    finally:
        sandbox.configure(fault_rate=0.0)
    assert digests == [_checksum(sandbox, r.file_id) for r in refs[:16]]
    assert scan_ids[:8] == scan_ids[8:] and len(set(scan_ids)) == 8
    assert sandbox.stats("target")["scans_created"] == created_before + 8
    assert events, "a 30% fault rate should have caused retries"
    src.close()
    tgt.close()


def _a_source_file(sandbox: Any, source: PlatformAPI, source_db: PlatformDB) -> tuple[int, bytes, int | None]:
    """(file id, bytes, the size the platform gives) of one source file, fetched without faults."""
    ref = source_db.scans_with_files(sandbox.info["source_scan_ids"][:1])[0].files[0]
    meta = source.file_meta(ref.file_id)
    with io.BytesIO() as buf:
        source.download(meta.url, buf, expected_size=meta.size)
        return ref.file_id, buf.getvalue(), meta.size


@pytest.mark.parametrize("fault", SCRIPTED_UPLOAD)
def test_an_upload_whose_answer_is_lost_is_not_sent_again(
    scripted: Sandbox, source: PlatformAPI, target: PlatformAPI, source_db: PlatformDB, fault: str
) -> None:
    """issue 12, point 5: the platform stored the upload, then the connection dropped (or a proxy
    answered 502/504): the upload is not resent, and the error says it may have been stored."""
    store = scripted.new_target_store()
    _, data, _ = _a_source_file(scripted, source, source_db)
    target.login()
    scripted.configure(**{fault: 1})
    with pytest.raises(TransientError) as info:
        target.upload(io.BytesIO(data), "lost.png", store=store)
    assert "not resent" in str(info.value), str(info.value)
    assert uploads_in_store(scripted, store) == 1, "the upload was sent twice"


@pytest.mark.parametrize("fault", ["storage_cut_short", "storage_too_long"])
def test_a_download_of_the_wrong_length_is_retried(
    scripted: Sandbox, source: PlatformAPI, source_db: PlatformDB, fault: str
) -> None:
    """issue 12, points 6 and 7: a storage answer without Content-Length that ends early, or runs
    on past the file's known size, is a failed attempt (retried), never the file."""
    file_id, data, size = _a_source_file(scripted, source, source_db)
    assert size == len(data)
    meta = source.file_meta(file_id)
    scripted.configure(**{fault: 1})
    with io.BytesIO() as dest:
        result = source.download(meta.url, dest, expected_size=meta.size)
        assert dest.getvalue() == data
    assert result.bytes == size and result.md5 == _checksum(scripted, file_id)
    assert scripted.configure()[fault] == 0, "the fault was not served"


@pytest.mark.timeout(60)  # the ceiling: without a limit per attempt the call never ends
@pytest.mark.parametrize("fault", ["storage_drip", "api_drip"])
def test_a_server_that_drips_forever_is_cut_off(scripted: Sandbox, source_db: PlatformDB, fault: str) -> None:
    """issue 12, point 7: a byte every 0.2 s, forever (the headers of an API answer, the body of a
    storage answer): each attempt ends at its wall-clock limit, and so does the call."""
    events: list[RetryEvent] = []
    policy = RetryPolicy(attempts=2, initial=0.01, max=0.01, deadline=None)
    with _api(
        scripted.info["instances"]["source"],
        retry=policy,
        timeouts=Timeouts(connect=5, read=3, total=1),
        on_retry=events.append,
    ) as source:
        ref = source_db.scans_with_files(scripted.info["source_scan_ids"][:1])[0].files[0]
        meta = source.file_meta(ref.file_id)  # logged in, and the storage URL known
        scripted.configure(**{fault: 1000, "drip_seconds": 0.2})
        with pytest.raises(TransientError) as info, io.BytesIO() as dest:
            if fault == "api_drip":
                source.file_meta(ref.file_id)
            else:
                source.download(meta.url, dest, expected_size=meta.size)
    assert "within 1s" in str(info.value), str(info.value)
    assert [e.attempt for e in events] == [1], "one retry, then the call gave up"


# -- two-factor accounts and ready tokens (issue 13, point 3) ------------------------------------


def _two_factor_token(sandbox: Any, instance: str) -> str:
    """A token of the two-factor account, got as the platform's client gets one: a login that is
    refused for want of a code, then the same login with the code that was emailed."""
    url = f"{sandbox.api(instance)}/api/v4/token-auth/"
    login = {"username": TWO_FACTOR_USER, "password": sandbox.info["instances"][instance]["password"]}
    first = requests.post(url, json=login, timeout=10)
    assert first.status_code == 400 and "2FA" in first.text and "code" in first.text
    code = sandbox.verification_code(instance, TWO_FACTOR_USER)
    assert code is not None
    answer = requests.post(url, json={**login, "verification_code": code}, timeout=10)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


def test_a_two_factor_account_is_told_to_use_a_token(sandbox: Any) -> None:
    """issue 13, point 3: scanjobs said the password was wrong; the platform asked for a code."""
    inst = dict(sandbox.info["instances"]["target"], username=TWO_FACTOR_USER)
    before = _requests_total(sandbox, "target")
    with _api(inst) as api, pytest.raises(AuthError) as info:
        api.login()
    assert "this account needs two-factor login: use a token" in str(info.value)
    assert _requests_total(sandbox, "target") == before + 1
    assert inst["password"] not in str(info.value)


def test_a_ready_token_is_used_without_logging_in(sandbox: Any, source_db: PlatformDB) -> None:
    """issue 13, point 3: the token of a two-factor account (got with the emailed code) is sent
    as it is: the platform takes it, and no login is tried."""
    token = _two_factor_token(sandbox, "source")
    ref = source_db.scans_with_files(sandbox.info["source_scan_ids"][:1])[0].files[0]
    sandbox.reset_stats()
    with PlatformAPI(sandbox.source_api, token=token, retry=POLICY, timeouts=TIMEOUTS) as api:
        api.login()  # checks the token
        assert api.file_meta(ref.file_id).id == ref.file_id
    logins = [r for r in sandbox.stats("source")["requests"] if r["route"] == "/api/v4/token-auth/"]
    assert logins == []


def test_a_refused_token_is_an_auth_error_at_once(sandbox: Any) -> None:
    """issue 13, point 3: a 401 with a given token cannot be mended by logging in again."""
    token = "f" * 40  # a token the platform never gave
    with PlatformAPI(sandbox.target_api, token=token, retry=POLICY, timeouts=TIMEOUTS) as api:
        before = _requests_total(sandbox, "target")
        with pytest.raises(AuthError) as info:
            api.login()
        assert "refused the API token" in str(info.value) and token not in str(info.value)
        with pytest.raises(AuthError):
            api.file_meta(1)
        assert _requests_total(sandbox, "target") == before + 2  # one each, no login, no retry

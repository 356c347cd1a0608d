"""The sandbox speaks docs/platform.md: endpoints, errors, idempotency, processing, faults, lifecycle."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import json
import os
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
import requests
from copy_support import output_dir, write_copy_job

from scanjobs.cli import main
from scanjobs.sandbox import Sandbox

pytestmark = pytest.mark.integration
TRANSIENT = {424, 429, 502, 503}
# The platform's processing statuses, in the order a scan goes through them (its client's list).
STATUSES = ("action created", "in progress", "done", "error", "interrupted")
FINISHED = {"done", "error", "interrupted"}


def token(sb: Sandbox, instance: str) -> dict[str, str]:
    inst = sb.info["instances"][instance]
    r = requests.post(
        f"{inst['api_url']}/api/v4/token-auth/",
        json={"username": inst["username"], "password": inst["password"]},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Token {r.json()['token']}"}


def query(sb: Sandbox, instance: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(**sb.db(instance)) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def source_files(sb: Sandbox, scan_id: int) -> list[int]:
    rows = query(
        sb,
        "source",
        "SELECT file_id FROM realograms_implementation_scanfile WHERE scan_id = %s ORDER BY id",
        scan_id,
    )
    return [r[0] for r in rows]


def upload(sb: Sandbox, auth: dict[str, str], data: bytes, **form: Any) -> requests.Response:
    return requests.post(
        f"{sb.target_api}/api/v4/processing/upload/",
        headers=auth,
        files={"file": ("IMG_1.jpg", data)},
        data={"input_type": "image", **form},
        timeout=10,
    )


def wait_for(check: Callable[[], bool], deadline_s: float = 20.0) -> None:
    end = time.monotonic() + deadline_s
    while not check():
        assert time.monotonic() < end, "condition not met before the deadline"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def auth(sandbox: Sandbox) -> dict[str, dict[str, str]]:
    return {name: token(sandbox, name) for name in ("source", "target")}


def test_info_describes_both_instances(sandbox: Sandbox) -> None:
    info = sandbox.info
    assert len(info["source_scan_ids"]) == 40 and info["seed"] == 7
    assert all(len(source_files(sandbox, s)) == 3 for s in info["source_scan_ids"][:5])
    assert source_files(sandbox, info["empty_scan_ids"][0]) == []
    a, b = info["shared_file_scan_ids"]
    assert set(source_files(sandbox, a)) & set(source_files(sandbox, b))
    # Same master names, different ids on the target.
    names = "SELECT id, name FROM planograms_implementation_planogram ORDER BY name"
    src, tgt = query(sandbox, "source", names), query(sandbox, "target", names)
    assert [n for _, n in src] == [n for _, n in tgt]
    assert not {i for i, _ in src} & {i for i, _ in tgt}
    additional = query(
        sandbox,
        "source",
        "SELECT count(*) FROM"
        " planograms_implementation_planogramsectionproduct WHERE action ILIKE"
        " '%%additional%%' OR merch_method ILIKE '%%additional%%'",
    )
    assert additional[0][0] >= 1
    # the target store was seeded empty: every scan in it came later, through the API (other
    # tests of this session copy into it), so none predates sandbox.json
    ready = (sandbox.dir / "sandbox.json").stat().st_mtime
    rows = query(
        sandbox,
        "target",
        "SELECT count(*) FROM realograms_implementation_scan WHERE store_id = %s"
        " AND created_at < to_timestamp(%s)",
        info["target_store_id"],
        ready,
    )
    assert rows[0][0] == 0


def test_db_user_is_read_only(sandbox: Sandbox) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        query(sandbox, "source", "DELETE FROM realograms_implementation_scan")


def test_token_auth_and_401(sandbox: Sandbox) -> None:
    r = requests.post(
        f"{sandbox.source_api}/api/v4/token-auth/", json={"username": "qa", "password": "wrong"}, timeout=10
    )
    assert r.status_code == 400
    assert r.json() == {"non_field_errors": ["Unable to log in with provided credentials."]}
    for headers in ({}, {"Authorization": "Token nope"}):
        r = requests.get(f"{sandbox.source_api}/api/v4/processing/actions/1/", headers=headers, timeout=10)
        assert r.status_code == 401 and r.json() == {"detail": "Invalid token."}


def test_file_meta_and_storage_bytes(sandbox: Sandbox, auth: dict[str, dict[str, str]]) -> None:
    extensions = set()
    for scan_id in sandbox.info["source_scan_ids"][:4]:
        for file_id in source_files(sandbox, scan_id):
            r = requests.get(
                f"{sandbox.source_api}/api/v1/master-data/file-upload/{file_id}/",
                headers=auth["source"],
                timeout=10,
            )
            meta = r.json()
            assert r.status_code == 200 and meta["id"] == file_id and meta["input_type"] == "image"
            name = meta["original_filename"]
            extensions.add(name.rsplit(".", 1)[-1].lower() if "." in name else "")
            body = requests.get(meta["file"], timeout=10)  # storage: no auth header
            assert body.status_code == 200 and len(body.content) == meta["size"]
            assert body.headers["Content-Length"] == str(meta["size"])
            kind = "image/png" if body.content.startswith(b"\x89PNG") else "image/jpeg"
            assert body.content[:3] in (b"\x89PN", b"\xff\xd8\xff")
            assert body.headers["Content-Type"] == kind
    assert {"", "png"} <= extensions and extensions & {"jpg", "jpeg"}
    r = requests.get(
        f"{sandbox.source_api}/api/v1/master-data/file-upload/999999999/", headers=auth["source"], timeout=10
    )
    assert r.status_code == 404 and r.json() == {"detail": "Not found."}


def test_storage_honours_range(sandbox: Sandbox, auth: dict[str, dict[str, str]]) -> None:
    file_id = source_files(sandbox, sandbox.info["source_scan_ids"][0])[0]
    meta = requests.get(
        f"{sandbox.source_api}/api/v1/master-data/file-upload/{file_id}/", headers=auth["source"], timeout=10
    ).json()
    whole = requests.get(meta["file"], timeout=10).content
    part = requests.get(meta["file"], headers={"Range": "bytes=10-29"}, timeout=10)
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 10-29/{len(whole)}"
    assert part.content == whole[10:30]


@pytest.mark.parametrize("size", [0, 300, 3 * 1024**2 + 7])  # empty, small (memory), large (disk)
def test_uploaded_bytes_come_back_whole(sandbox: Sandbox, auth: dict[str, dict[str, str]], size: int) -> None:
    data = b"\xff\xd8\xff\xe0" + os.urandom(size)
    r = upload(sandbox, auth["target"], data, checksum=hashlib.md5(data).hexdigest())
    assert r.status_code == 201, r.text
    url = f"{sandbox.target_api}/api/v1/master-data/file-upload/{r.json()['id']}/"
    meta = requests.get(url, headers=auth["target"], timeout=10).json()
    assert meta["size"] == len(data) and meta["original_filename"] == "IMG_1.jpg"
    back = requests.get(meta["file"], timeout=10)
    assert back.content == data and back.headers["Content-Type"] == "image/jpeg"


def test_malformed_multipart_is_a_400(sandbox: Sandbox, auth: dict[str, dict[str, str]]) -> None:
    r = requests.post(
        f"{sandbox.target_api}/api/v4/processing/upload/",
        headers={**auth["target"], "Content-Type": "multipart/form-data; boundary=xyz"},
        data=b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\nno end',
        timeout=10,
    )
    assert r.status_code == 400 and "Multipart form parse error" in r.json()["detail"]


def test_upload_create_and_process(sandbox: Sandbox, auth: dict[str, dict[str, str]]) -> None:
    store = sandbox.new_target_store()
    scan = sandbox.info["source_scan_ids"][0]
    new_ids = []
    for file_id in source_files(sandbox, scan):
        meta = requests.get(
            f"{sandbox.source_api}/api/v1/master-data/file-upload/{file_id}/",
            headers=auth["source"],
            timeout=10,
        ).json()
        data = requests.get(meta["file"], timeout=10).content
        r = upload(sandbox, auth["target"], data, store=str(store), checksum=hashlib.md5(data).hexdigest())
        assert r.status_code == 201, r.text
        assert requests.get(r.json()["file"], timeout=10).content == data
        new_ids.append(r.json()["id"])
    payload = {"store": store, "files": new_ids, "input_type": "image", "captured_at": 1}
    r = requests.post(
        f"{sandbox.target_api}/api/v4/processing/actions/", json=payload, headers=auth["target"], timeout=10
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["status"] == "action created" and created["files"] == new_ids
    url = f"{sandbox.target_api}/api/v4/processing/actions/{created['id']}/"
    seen = [created["status"]]

    def finished() -> bool:
        status = requests.get(url, headers=auth["target"], timeout=10).json()["status"]
        if status != seen[-1]:
            seen.append(status)
        return status in FINISHED

    wait_for(finished)
    # issue 13, point 2: the platform's words, in its order (a poll may miss `in progress`)
    assert seen in (["action created", "in progress", "done"], ["action created", "done"]), seen
    detail = requests.get(url, headers=auth["target"], timeout=10).json()
    _assert_platform_detail(sandbox, "target", detail)
    assert detail["store_id"] == store and [i["id"] for i in detail["inputs"]] == new_ids
    assert detail["input_type"] == "image" and detail["aisle"] is None and detail["section"] is None
    assert query(sandbox, "target", "SELECT has_report FROM realograms_implementation_scan WHERE id = %s",
                 created["id"]) == [(True,)]  # fmt: skip
    rows = query(
        sandbox,
        "target",
        """
        SELECT s.provided_values, r.section_name, r.store_planogram_id, sf.file_type,
               (SELECT count(*) FROM realograms_implementation_realogrambay b
                 WHERE b.realogram_id = s.active_realogram_id),
               (SELECT data FROM planograms_compliance_majorityv2log m
                 WHERE m.data ? s.id::text)
        FROM realograms_implementation_scan s
        JOIN planograms_compliance_planogramcompliancereport r ON r.realogram_id = s.active_realogram_id
        JOIN realograms_implementation_scanfile sf ON sf.scan_id = s.id
        WHERE s.id = %s""",
        created["id"],
    )
    values, section, store_pog, file_type, bays, mlog = rows[0]
    assert values == {"_raw_data": payload} and section and file_type == "image" and bays >= 1
    assert mlog[str(created["id"])]["map_by"]
    assert detail["store_planogram_id"] == store_pog  # the MA's, as the payload gave none
    assert (
        query(
            sandbox,
            "target",
            "SELECT store_id FROM planograms_implementation_planogramstore WHERE id = %s",
            store_pog,
        )[0][0]
        == store
    )


def _when(text: str) -> dt.datetime:
    """A detail's time as the platform writes it (ISO 8601, UTC as `Z`)."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _assert_platform_detail(sb: Sandbox, instance: str, detail: dict[str, Any]) -> None:
    """issue 13, point 7: a scan detail has the fields the platform's client reads, shaped as it
    reads them: `store` an object, `inputs` [{id, file}] whose links give the bytes, `created`,
    `user.username`, processing times around the processing, `last_requeue`."""
    row = query(
        sb,
        instance,
        "SELECT s.status, s.store_id, st.custom_id, s.created_at,"
        " ARRAY(SELECT file_id FROM realograms_implementation_scanfile WHERE scan_id = s.id ORDER BY id)"
        " FROM realograms_implementation_scan s"
        " JOIN master_data_implementation_store st ON st.id = s.store_id WHERE s.id = %s",
        detail["id"],
    )[0]
    status, store, custom_id, created, files = row
    assert detail["status"] == status and detail["store_id"] == store
    assert detail["store"]["id"] == store and detail["store"]["custom_id"] == custom_id and custom_id
    assert _when(detail["created"]) == created
    assert detail["user"]["username"] == sb.info["instances"][instance]["username"]
    assert [i["id"] for i in detail["inputs"]] == files
    for item in detail["inputs"]:
        data = requests.get(item["file"], timeout=10)
        size = query(
            sb, instance, "SELECT size FROM master_data_implementation_fileupload WHERE id = %s", item["id"]
        )
        assert data.status_code == 200 and [(len(data.content),)] == size
    start, finish = detail["processing_start_time"], detail["processing_finish_time"]
    assert status in FINISHED and start is not None and finish is not None
    assert created <= _when(start) <= _when(finish)
    assert "last_requeue" in detail and detail["last_requeue"] is None
    assert {"store_planogram_id", "aisle", "section"} <= set(detail)


def test_seeded_scan_detail_answers_like_the_platform(
    sandbox: Sandbox, auth: dict[str, dict[str, str]]
) -> None:
    """issue 13, point 7: the detail of a seeded scan, with its create payload's aisle and store POG."""
    for scan in (*sandbox.info["source_scan_ids"][:3], *sandbox.info["empty_scan_ids"]):
        r = requests.get(
            f"{sandbox.source_api}/api/v4/processing/actions/{scan}/", headers=auth["source"], timeout=10
        )
        assert r.status_code == 200, r.text
        detail = r.json()
        _assert_platform_detail(sandbox, "source", detail)
        values = "SELECT provided_values FROM realograms_implementation_scan WHERE id = %s"
        raw = query(sandbox, "source", values, scan)[0][0]
        raw = raw.get("_raw_data", raw)
        assert detail["aisle"] == raw["aisle"] and detail["store_planogram_id"] == raw["store_planogram"]


def test_bad_requests_name_the_field(sandbox: Sandbox, auth: dict[str, dict[str, str]]) -> None:
    t = auth["target"]
    assert "input_type" in upload(sandbox, t, b"x", input_type="photo").json()
    assert "checksum" in upload(sandbox, t, b"x", checksum="0" * 64).json()
    assert upload(sandbox, t, b"x", store="999999").json() == {
        "store": ['Invalid pk "999999" - object does not exist.']
    }
    good = upload(sandbox, t, b"\x89PNG\r\n\x1a\n").json()["id"]
    store = sandbox.info["target_store_id"]
    source_file = source_files(sandbox, sandbox.info["source_scan_ids"][0])[0]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"files": [good]}, "store"),
        ({"store": 9, "files": [good]}, "store"),
        ({"store": store, "files": []}, "files"),
        ({"store": store}, "files"),
        ({"store": store, "files": [source_file]}, "files"),  # a source id: not on this instance
        ({"store": store, "files": [good], "section_id": 1}, "section_id"),
        ({"store": store, "files": [good], "category_id": 1}, "category_id"),
        ({"store": store, "files": [good], "store_planogram": 1}, "store_planogram"),
    ]
    before = sandbox.stats("target")["scans_created"]
    for payload, field in cases:
        r = requests.post(
            f"{sandbox.target_api}/api/v4/processing/actions/", json=payload, headers=t, timeout=10
        )
        assert r.status_code == 400 and list(r.json()) == [field], (payload, r.text)
    r = requests.post(
        f"{sandbox.target_api}/api/v4/processing/actions/", json={"store": 9}, headers=t, timeout=10
    )
    assert r.json() == {"store": ['Invalid pk "9" - object does not exist.']}
    assert sandbox.stats("target")["scans_created"] == before
    r = requests.get(f"{sandbox.target_api}/api/v4/processing/actions/999999999/", headers=t, timeout=10)
    assert r.status_code == 404


def test_same_uid_gives_one_scan(sandbox: Sandbox, auth: dict[str, dict[str, str]]) -> None:
    t = auth["target"]
    store = sandbox.new_target_store()
    file_id = upload(sandbox, t, b"\xff\xd8\xff\xe0").json()["id"]
    url = f"{sandbox.target_api}/api/v4/processing/actions/"
    headers = {**t, "REB-CLIENT-REQUEST-UID": str(uuid.uuid4())}
    first = requests.post(url, json={"store": store, "files": [file_id]}, headers=headers, timeout=10)
    again = requests.post(url, json={"store": store, "files": [file_id]}, headers=headers, timeout=10)
    assert first.status_code == 201 and again.status_code in (200, 201)
    assert first.json()["id"] == again.json()["id"]

    headers = {**t, "REB-CLIENT-REQUEST-UID": str(uuid.uuid4())}
    results: list[tuple[int, Any]] = []
    barrier = threading.Barrier(10)

    def create() -> None:
        barrier.wait()
        r = requests.post(url, json={"store": store, "files": [file_id]}, headers=headers, timeout=10)
        results.append((r.status_code, r.json()))

    threads = [threading.Thread(target=create) for _ in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ids = {body["id"] for status, body in results if status in (200, 201)}
    assert len(ids) == 1 and all(s in (200, 201, 424) for s, _ in results), results
    busy = [body for status, body in results if status == 424]
    # issue 13, point 7: the platform's client reads a 424's `error`
    assert all(b == {"error": "Another request is already processing"} for b in busy)
    count = query(
        sandbox, "target", "SELECT count(*) FROM realograms_implementation_scan WHERE store_id = %s", store
    )[0][0]
    assert count == 2


def test_stats_count_routes(sandbox: Sandbox, auth: dict[str, dict[str, str]]) -> None:
    sandbox.reset_stats()
    for _ in range(3):
        requests.get(
            f"{sandbox.source_api}/api/v1/master-data/file-upload/1/", headers=auth["source"], timeout=10
        )
    stats = sandbox.stats("source")
    assert stats["requests_total"] == 3 and stats["faults_injected"] == 0
    assert stats["requests"] == [
        {"method": "GET", "route": "/api/v1/master-data/file-upload/{id}/", "status": 404, "count": 3}
    ]


def test_stats_count_arrivals_per_second(sandbox: Sandbox, auth: dict[str, dict[str, str]]) -> None:
    """Issue 14: the arrivals per whole second, counted as each request comes in (before the
    sandbox's latency), prove a client's request rate; control requests are not counted."""
    sandbox.reset_stats()
    empty = sandbox.stats("source")
    assert empty["first_request_at"] is None and empty["per_second"] == {}
    assert empty["max_per_second"] == 0
    url = f"{sandbox.source_api}/api/v1/master-data/file-upload/1/"
    sandbox.configure(latency_ms=400)  # each request waits 200-600 ms after it arrives
    try:
        sent = time.time()
        for _ in range(3):
            requests.get(url, headers=auth["source"], timeout=10)
        answered = time.time()
    finally:
        sandbox.configure(latency_ms=0)
    stats = sandbox.stats("source")
    first = stats["first_request_at"]
    # counted on arrival: at least the first request's 200 ms of latency before its answer
    assert sent <= first <= answered - 0.2
    assert sum(stats["per_second"].values()) == 3
    assert all(int(first) <= second <= answered for second in stats["per_second"])
    assert stats["max_per_second"] == max(stats["per_second"].values())
    assert sandbox.stats("target")["per_second"] == {}  # each instance counts its own


def test_fault_rate_is_observed(sandbox: Sandbox, auth: dict[str, dict[str, str]]) -> None:
    sandbox.reset_stats()
    config = sandbox.configure(fault_rate=0.2, hang_seconds=0.05)
    assert config["fault_rate"] == 0.2
    url = f"{sandbox.source_api}/api/v1/master-data/file-upload/1/"
    failed = 0
    try:
        for _ in range(400):
            try:
                r = requests.get(url, headers=auth["source"], timeout=5)
                failed += r.status_code in TRANSIENT
                if r.status_code == 429:
                    assert r.headers["Retry-After"] == "1"
            except requests.ConnectionError:
                failed += 1
    finally:
        sandbox.configure(fault_rate=0.0, hang_seconds=15)
    stats = sandbox.stats("source")
    assert 0.12 <= stats["faults_injected"] / 400 <= 0.28
    hangs = stats["faults_injected"] - failed  # hung requests are answered normally afterwards
    assert failed > 0 and hangs >= 0 and stats["requests_total"] == 400


def _retrying(method: str, url: str, **kwargs: Any) -> requests.Response:
    for _ in range(30):
        try:
            r = requests.request(method, url, timeout=(2, 1), **kwargs)
        except (requests.ConnectionError, requests.Timeout):
            continue
        if r.status_code not in TRANSIENT:
            return r
        time.sleep(0.05)
    raise AssertionError(f"{method} {url} kept failing")


def test_retrying_client_copies_everything_at_5_percent(
    sandbox: Sandbox, auth: dict[str, dict[str, str]]
) -> None:
    store = sandbox.new_target_store()
    sandbox.configure(fault_rate=0.05, hang_seconds=1.5)
    scans = sandbox.info["source_scan_ids"][:12]
    try:
        for scan in scans:
            new_ids = []
            for file_id in source_files(sandbox, scan):
                meta = _retrying(
                    "GET",
                    f"{sandbox.source_api}/api/v1/master-data/file-upload/{file_id}/",
                    headers=auth["source"],
                ).json()
                data = _retrying("GET", meta["file"]).content
                assert hashlib.sha256(data).hexdigest() and len(data) == meta["size"]
                r = _retrying(
                    "POST",
                    f"{sandbox.target_api}/api/v4/processing/upload/",
                    headers=auth["target"],
                    data={"input_type": "image"},
                    files={"file": (meta["original_filename"], data)},
                )
                assert r.status_code == 201
                new_ids.append(r.json()["id"])
            headers = {**auth["target"], "REB-CLIENT-REQUEST-UID": str(uuid.uuid4())}
            r = _retrying(
                "POST",
                f"{sandbox.target_api}/api/v4/processing/actions/",
                json={"store": store, "files": new_ids},
                headers=headers,
            )
            assert r.status_code in (200, 201)
    finally:
        sandbox.configure(fault_rate=0.0, hang_seconds=15)
    assert sandbox.stats("source")["faults_injected"] > 0
    count = query(
        sandbox, "target", "SELECT count(*) FROM realograms_implementation_scan WHERE store_id = %s", store
    )[0][0]
    assert count == len(scans)


ENDINGS_SQL = """
SELECT s.status, s.has_report, s.active_realogram_id IS NOT NULL,
       (SELECT count(*) FROM planograms_compliance_planogramcompliancereport r
         WHERE r.realogram_id = s.active_realogram_id AND r.is_last_active)
FROM realograms_implementation_scan s WHERE s.id = ANY(%s) ORDER BY s.id
"""


def _copy_every_scan(sb: Sandbox) -> list[int]:
    """Each source scan's first file uploaded to a new target store, and a scan made of it."""
    source, target = token(sb, "source"), token(sb, "target")
    store = sb.new_target_store()
    made = []
    for scan in sb.info["source_scan_ids"]:
        meta = requests.get(
            f"{sb.source_api}/api/v1/master-data/file-upload/{source_files(sb, scan)[0]}/",
            headers=source,
            timeout=10,
        ).json()
        r = upload(sb, target, requests.get(meta["file"], timeout=10).content, store=str(store))
        assert r.status_code == 201, r.text
        r = requests.post(
            f"{sb.target_api}/api/v4/processing/actions/",
            json={"store": store, "files": [r.json()["id"]], "input_type": "image"},
            headers=target,
            timeout=10,
        )
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    return made


def _all_finished(sb: Sandbox, scan_ids: list[int]) -> bool:
    return all(row[0] in FINISHED for row in query(sb, "target", ENDINGS_SQL, scan_ids))


def test_processing_ends_the_platforms_ways_the_same_for_a_seed(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    """issue 13, point 2: as on the platform, some scans end in `error` (no realogram) and some
    `done` without a report (has_report false); which ones is a matter of the seed and the scan's
    images, so two sandboxes of one seed end the same copies the same ways."""
    endings = []
    for _ in range(2):
        # 40 scans of seed 12 end in each way (a fact of the seed: the same on every run)
        sb = sandbox_factory(scans=40, files_per_scan=1, processing_delay=0.1, seed=12)
        made = _copy_every_scan(sb)
        wait_for(functools.partial(_all_finished, sb, made))
        endings.append(query(sb, "target", ENDINGS_SQL, made))
    assert endings[0] == endings[1]
    kinds = Counter(
        "error" if status == "error" else "reportless" if reports == 0 else "reported"
        for status, _, _, reports in endings[0]
    )
    assert kinds["error"] and kinds["reportless"] and kinds["reported"], kinds
    for status, has_report, realogram, reports in endings[0]:
        assert status in ("done", "error")
        assert has_report == (reports > 0) and realogram == (status == "done")


def _fingerprint(sb: Sandbox) -> list[tuple[Any, ...]]:
    return query(
        sb,
        "source",
        """
        SELECT s.id, f.checksum, f.original_filename,
               (SELECT string_agg(r.section_name, ',' ORDER BY r.id)
                  FROM planograms_compliance_planogramcompliancereport r
                 WHERE r.realogram_id = s.active_realogram_id)
        FROM realograms_implementation_scan s
        JOIN realograms_implementation_scanfile sf ON sf.scan_id = s.id
        JOIN master_data_implementation_fileupload f ON f.id = sf.file_id
        ORDER BY s.id, sf.id""",
    )


def _postgres_of(directory: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["name"] == "postgres" and str(directory) in cmdline:
            found.append(proc)
    return found


def test_same_seed_same_data_and_clean_shutdown(
    sandbox: Sandbox, sandbox_factory: Callable[..., Sandbox]
) -> None:
    one = sandbox_factory(scans=3, files_per_scan=2, seed=7, processing_delay=0.1)
    two = sandbox_factory(scans=3, files_per_scan=2, seed=7, processing_delay=0.1)
    assert _fingerprint(one) == _fingerprint(two)
    # Ids are positional, so a bigger sandbox with the same seed starts with the same ids.
    assert one.info["source_scan_ids"] == sandbox.info["source_scan_ids"][:3]
    for sb in (one, two):
        pid = sb.info["pid"]
        assert _postgres_of(sb.dir)
        assert sb.stop() == 0
        assert not psutil.pid_exists(pid) and not _postgres_of(sb.dir)


def test_restart_over_orphaned_postgres_with_big_files(tmp_path: Path) -> None:
    first = Sandbox(tmp_path, scans=1, files_per_scan=1, file_bytes=3_000_000, seed=3)
    first.start()
    try:
        assert first.proc is not None
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait()
        assert _postgres_of(tmp_path)  # the orphan a killed run leaves behind
        with Sandbox(tmp_path, scans=1, files_per_scan=1, file_bytes=3_000_000, seed=3) as again:
            file_id = source_files(again, again.info["source_scan_ids"][0])[0]
            auth = token(again, "source")
            meta = requests.get(
                f"{again.source_api}/api/v1/master-data/file-upload/{file_id}/", headers=auth, timeout=10
            ).json()
            assert meta["size"] == 3_000_000
            head = requests.get(meta["file"], headers={"Range": "bytes=0-7"}, timeout=10)
            assert head.status_code == 206 and head.content[:3] in (b"\x89PN", b"\xff\xd8\xff")
    finally:
        first.stop()
    assert not _postgres_of(tmp_path)


def _analysis_by_source(job: Path) -> dict[str, list[dict[str, str]]]:
    """A copy job's analysis rows by source scan, without the target's scan id (which depends on
    the order the scans were created in; everything else must not)."""
    with open(output_dir(job) / "analysis_with_comments.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    by_source: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        row.pop("target_scan_id")
        by_source.setdefault(row["source_scan_id"], []).append(row)
    return by_source


def test_same_seed_same_mapping_whatever_the_order(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    """issue 12, point 23: the demo gave 5 and then 3 "Wrong POG Name Mapping" rows with one seed.
    Two sandboxes of one seed, the same scans copied in opposite orders: the simulated MA maps
    each scan the same way, so the analyses agree row for row."""
    results = []
    for n, reverse in enumerate((False, True)):
        sb = sandbox_factory(scans=12, files_per_scan=1, processing_delay=0.1, ma_accuracy=0.5, seed=23)
        ids = list(sb.info["source_scan_ids"])
        halves = [ids[:6], ids[6:]]
        folder = tmp_path / f"sandbox-{n}"
        rows: dict[str, list[dict[str, str]]] = {}
        for half, scan_ids in enumerate(reversed(halves) if reverse else halves):
            job = write_copy_job(
                folder,
                sb,
                store=sb.info["target_store_id"],
                scan_ids=list(reversed(scan_ids)) if reverse else scan_ids,
                name=f"half-{half}",
                batch={"size": 1, "workers": {"download": 1, "upload": 1, "create": 1}},
                analysis={"enabled": True, "wait_for_processing": "1m"},
            )
            assert main(["run", str(job), "-q"]) == 0
            rows.update(_analysis_by_source(job))
        results.append(rows)
    assert sorted(results[0]) == sorted(str(s) for s in ids)
    assert results[0] == results[1]
    comments = Counter(r["comment"] for rows in results[0].values() for r in rows)
    assert comments["Wrong POG Name Mapping"] + comments["Same POG Name but Different Section"] > 0, comments


# -- restarts in one folder (issue 12, point 23) -----------------------------------------------


def _reach(sb: Sandbox) -> dict[str, Any]:
    """What jobs written against `sb` depend on: its URLs, database ports and credentials."""
    return {name: sb.info["instances"][name] for name in ("source", "target")}


def test_a_restart_keeps_ports_credentials_and_asked_data(tmp_path: Path) -> None:
    """issue 12, point 23: a job written against a sandbox works unchanged after the sandbox
    restarts in its folder (same ports, same passwords: same fingerprint); with --keep-data the
    scans it copied and their files are still there, and nothing is copied again."""
    folder, job = tmp_path / "sb", tmp_path / "jobs" / "copy.yaml"
    options: dict[str, Any] = {"scans": 2, "files_per_scan": 1, "processing_delay": 0.1, "seed": 5}
    with Sandbox(folder, **options) as first:
        assert main(["init", "copy", str(job), "--sandbox", str(folder)]) == 0
        assert main(["run", str(job), "-q"]) == 0
        reach = _reach(first)
        store = first.info["target_store_id"]
        copied = query(
            first, "target", "SELECT id FROM realograms_implementation_scan WHERE store_id = %s", store
        )
    assert len(copied) == 2
    with Sandbox(folder, keep_data=True, **options) as again:
        assert _reach(again) == reach
        assert again.info["data_kept"] is True
        assert main(["run", str(job), "-q"]) == 0  # the job neither changed nor copies anything again
        assert again.stats("target")["scans_created"] == 0
        assert (
            query(again, "target", "SELECT id FROM realograms_implementation_scan WHERE store_id = %s", store)
            == copied
        )
        target_file = query(
            again,
            "target",
            "SELECT file_id FROM realograms_implementation_scanfile WHERE scan_id = %s",
            copied[0][0],
        )[0][0]
        auth = token(again, "target")
        meta = requests.get(
            f"{again.target_api}/api/v1/master-data/file-upload/{target_file}/", headers=auth, timeout=10
        ).json()
        body = requests.get(meta["file"], timeout=10)
        assert body.status_code == 200 and len(body.content) == meta["size"]
    with Sandbox(folder, **options) as afresh:  # without --keep-data: the same sandbox, reseeded
        assert _reach(afresh) == reach and afresh.info["data_kept"] is False
        assert not query(
            afresh, "target", "SELECT id FROM realograms_implementation_scan WHERE store_id = %s", store
        )


def test_a_taken_port_is_named_and_new_ports_are_asked_for(tmp_path: Path) -> None:
    """issue 12, point 23: when another program holds a port the folder kept, the start says
    which and how to go on, instead of taking others that every written job would miss."""
    with Sandbox(tmp_path, scans=1, files_per_scan=1) as first:
        kept = int(first.source_api.rsplit(":", 1)[1])
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", kept))
        holder.listen()
        refused = Sandbox(tmp_path, scans=1, files_per_scan=1)
        with pytest.raises(RuntimeError) as failed:
            refused.start()
        assert f"port {kept} (the source API" in str(failed.value) and "--new-ports" in str(failed.value)
        assert not _postgres_of(tmp_path)
        with Sandbox(tmp_path, scans=1, files_per_scan=1, new_ports=True) as moved:
            assert moved.source_api != first.source_api
    with Sandbox(tmp_path, scans=1, files_per_scan=1) as after:  # the new ports are kept now
        assert after.source_api == moved.source_api


def test_one_sandbox_per_folder_and_kept_data_only_as_seeded(tmp_path: Path) -> None:
    """issue 12, point 23: a second sandbox in a running one's folder would stop its PostgreSQL;
    --keep-data with other seed options would serve ids that are not there."""
    with Sandbox(tmp_path, scans=1, files_per_scan=1) as running:
        second = Sandbox(tmp_path, scans=1, files_per_scan=1)
        with pytest.raises(RuntimeError, match="already runs"):
            second.start()
        assert requests.get(f"{running.source_api}/_sandbox/stats", timeout=10).ok
        assert (tmp_path / "sandbox.json").exists()
    with pytest.raises(RuntimeError, match="holds data seeded with scans=1"):
        Sandbox(tmp_path, scans=2, files_per_scan=1, keep_data=True).start()
    assert not _postgres_of(tmp_path)


def test_a_killed_sandbox_then_kept_data_says_what_was_lost(tmp_path: Path) -> None:
    """issue 12, point 23: uploads held in memory die with a killed sandbox; a start that keeps
    its data says so instead of serving 404s unexplained."""
    first = Sandbox(tmp_path, scans=1, files_per_scan=1)
    first.start()
    try:
        auth = token(first, "target")
        assert upload(first, auth, b"\xff\xd8\xff" + b"x" * 100).status_code == 201
        assert first.proc is not None
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait()
    finally:
        first.stop()
    with Sandbox(tmp_path, scans=1, files_per_scan=1, keep_data=True) as again:
        assert again.info["data_kept"] is True
        wait_for(lambda: "killed before it saved the files" in again.log_path.read_text())


def test_info_and_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """issue 12, point 23: `sandbox info` says where the sandbox is, its ports, whether it runs
    and where its credentials come from (never a secret); `sandbox down` stops it, PostgreSQL too."""
    assert main(["sandbox", "info", "--dir", str(tmp_path)]) == 2
    assert "no sandbox in" in capsys.readouterr().err
    sb = Sandbox(tmp_path, scans=1, files_per_scan=1)
    sb.start()
    try:
        assert main(["sandbox", "info", "--dir", str(tmp_path), "--json"]) == 0
        out = capsys.readouterr().out
        report = json.loads(out)
        assert report["running"] is True and sb.proc is not None and report["pid"] == sb.proc.pid
        assert report["api_urls"] == {"source": sb.source_api, "target": sb.target_api}
        assert report["ports"]["postgres"] == sb.db("source")["port"]
        assert report["credentials_file"] == str(tmp_path / "credentials.json")
        assert main(["sandbox", "info", "--dir", str(tmp_path)]) == 0
        out += capsys.readouterr().out
        for inst in sb.info["instances"].values():
            assert inst["password"] not in out and inst["db"]["password"] not in out
        assert main(["sandbox", "down", "--dir", str(tmp_path)]) == 0
        assert "stopped the sandbox" in capsys.readouterr().out
        assert sb.proc.poll() == 0 and not _postgres_of(tmp_path)
        assert main(["sandbox", "info", "--dir", str(tmp_path), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["running"] is False
    finally:
        sb.stop()
    # a killed sandbox's PostgreSQL is what `down` stops then
    killed = Sandbox(tmp_path, scans=1, files_per_scan=1)
    killed.start()
    assert killed.proc is not None
    os.kill(killed.proc.pid, signal.SIGKILL)
    killed.proc.wait()
    assert _postgres_of(tmp_path)
    assert main(["sandbox", "down", "--dir", str(tmp_path)]) == 0
    assert "a killed sandbox had left running" in capsys.readouterr().out
    assert not _postgres_of(tmp_path)


def test_down_stops_only_its_own_postgres(tmp_path: Path) -> None:
    """issue 12, point 23: `down` (and a start) stop the PostgreSQL a killed sandbox left, found by
    the postmaster.pid in the folder: a file that could name any process. One naming another
    sandbox's PostgreSQL must not stop it."""
    with Sandbox(tmp_path / "victim", scans=1, files_per_scan=1) as victim:
        theirs = next(p for p in _postgres_of(victim.dir) if "-D" in p.cmdline())  # the postmaster
        mine = tmp_path / "mine" / "pg" / "data"
        mine.mkdir(parents=True)
        (mine / "postmaster.pid").write_text(f"{theirs.pid}\n{victim.dir}/pg/data\n")
        assert main(["sandbox", "down", "--dir", str(tmp_path / "mine")]) == 0
        assert theirs.is_running()
        assert requests.get(f"{victim.source_api}/_sandbox/stats", timeout=10).ok
        with psycopg.connect(**victim.db("source")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)

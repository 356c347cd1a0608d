"""Copy mode's uploads and creates as the platform's own client sends them (issue 13)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
import requests
from copy_support import (
    FILE,
    assert_copied,
    query,
    read_mapping,
    scan_files,
    uploads_in_store,
    write_copy_job,
)
from test_sandbox import token, upload

from scanjobs.cli import main
from scanjobs.jobfile import CopyJob, load_job
from scanjobs.modes.copy.plan import upload_uid
from scanjobs.sandbox import Sandbox

pytestmark = pytest.mark.integration


def file_records(job: Path) -> dict[int, tuple[int | None, dict[str, object], str | None]]:
    """{source file id: (target file id, data, request uid)} of a copy job's state."""
    with sqlite3.connect(job.with_suffix(".state.sqlite")) as conn:
        rows = conn.execute("SELECT source_id, target_id, data, request_uid FROM items WHERE kind = 'file'")
        return {int(s): (t, json.loads(d or "{}"), u) for s, t, d, u in rows}


def test_every_upload_carries_the_md5_checksum_the_platform_verifies(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Issue 13, point 1: scanjobs sent SHA-256 where the platform's client sends MD5 hex."""
    store, ids = sandbox.new_target_store(), sandbox.info["source_scan_ids"][:3]
    job = write_copy_job(tmp_path, sandbox, store=store, scan_ids=ids)
    sandbox.reset_stats()
    assert main(["run", str(job)]) == 0
    assert_copied(sandbox, job, store, ids)
    stats = sandbox.stats("target")
    files = uploads_in_store(sandbox, store)
    assert stats["files_uploaded"] == files == stats["checksums_verified"], stats
    recorded = file_records(job)
    stored = dict(query(sandbox, "target", f"SELECT id, checksum FROM {FILE} WHERE store_id = %s", store))
    source = {f: c for fs in scan_files(sandbox, "source", ids).values() for f, c, _ in fs}
    assert len(recorded) == files
    for source_id, (target_id, data, _uid) in recorded.items():
        assert data["md5"] == stored[target_id] == source[source_id]
        assert "sha256" not in data


def test_every_upload_carries_its_stable_uid_and_the_platform_keeps_it(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Issue 13, point 4: scanjobs sent no REB-CLIENT-REQUEST-UID with an upload. Each upload's uid
    is derived from the state and the source file (a crash's rerun derives it again), recorded
    with the intent, and sent: the platform answers the same file to it again."""
    store, ids = sandbox.new_target_store(), sandbox.info["source_scan_ids"][3:5]
    job_path = write_copy_job(tmp_path, sandbox, store=store, scan_ids=ids)
    assert main(["run", str(job_path)]) == 0
    job = load_job(job_path)
    assert isinstance(job, CopyJob)
    with sqlite3.connect(job_path.with_suffix(".state.sqlite")) as conn:
        epoch = conn.execute("SELECT value FROM meta WHERE key = 'created_at'").fetchone()[0]
    auth = token(sandbox, "target")
    recorded = file_records(job_path)
    for source_id, (target_id, _data, uid) in recorded.items():
        assert uid == upload_uid(epoch, job.fingerprint(), job.source.api_url, source_id)
        again = upload(sandbox, {**auth, "REB-CLIENT-REQUEST-UID": str(uid)}, b"\xff\xd8\xff\xe0")
        assert again.status_code == 201 and again.json()["id"] == target_id, again.text
    assert uploads_in_store(sandbox, store) == len(recorded)


def test_an_upload_adoption_cannot_tell_is_answered_again_by_its_uid(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Issue 13, point 4: an upload stored but unanswered (a 502), and another file of the same
    bytes and name in the store at about the same time (another job's, say): adoption is in
    doubt and uploads again, with the same uid, so the platform answers the file it stored."""
    store, ids = sandbox.new_target_store(), sandbox.info["source_scan_ids"][5:6]
    job = write_copy_job(tmp_path, sandbox, store=store, scan_ids=ids)
    sandbox.configure(upload_stored_then_502=1)
    try:
        assert main(["run", str(job)]) == 1
    finally:
        sandbox.configure(upload_stored_then_502=0)
    recorded = {t for t, _d, _u in file_records(job).values() if t}
    stored = query(
        sandbox, "target", f"SELECT id, file, original_filename FROM {FILE} WHERE store_id = %s", store
    )
    (lost,) = [(i, name) for i, _f, name in stored if i not in recorded]
    auth = token(sandbox, "target")
    meta = requests.get(
        f"{sandbox.target_api}/api/v1/master-data/file-upload/{lost[0]}/", headers=auth, timeout=10
    ).json()
    data = requests.get(meta["file"], timeout=10).content
    foreign = requests.post(
        f"{sandbox.target_api}/api/v4/processing/upload/",
        headers=auth,
        files={"file": (lost[1], data)},
        data={"input_type": "image", "store": str(store), "checksum": hashlib.md5(data).hexdigest()},
        timeout=10,
    )
    assert foreign.status_code == 201, foreign.text
    assert main(["run", str(job)]) == 0
    assert_copied(sandbox, job, store, ids)
    used = {
        f for fs in scan_files(sandbox, "target", list(read_mapping(job).values())).values() for f, _, _ in fs
    }
    assert lost[0] in used and foreign.json()["id"] not in used
    assert uploads_in_store(sandbox, store) == len(used) + 1, "the lost upload was stored a second time"

"""Copy mode's uploads and creates as the platform's own client sends them (issue 13)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from copy_support import FILE, assert_copied, query, scan_files, uploads_in_store, write_copy_job

from scanjobs.cli import main
from scanjobs.sandbox import Sandbox

pytestmark = pytest.mark.integration


def file_records(job: Path) -> dict[int, tuple[int, dict[str, object], str | None]]:
    """{source file id: (target file id, data, request uid)} of a copy job's state."""
    with sqlite3.connect(job.with_suffix(".state.sqlite")) as conn:
        rows = conn.execute("SELECT source_id, target_id, data, request_uid FROM items WHERE kind = 'file'")
        return {int(s): (int(t), json.loads(d or "{}"), u) for s, t, d, u in rows}


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

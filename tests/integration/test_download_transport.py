"""Download mode against storage answers cut short (issue 12, point 6): retried, never kept cut."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from copy_support import query
from test_download import write_job

from scanjobs.cli import main
from scanjobs.ownership import OWNER_MARKER
from scanjobs.sandbox import Sandbox

pytestmark = pytest.mark.integration


def test_a_storage_answer_cut_short_is_fetched_again(scripted: Sandbox, tmp_path: Path) -> None:
    """issue 12, point 6: two answers end halfway with no Content-Length. download() compares the
    bytes with the file's known size and retries: the run completes with every image whole
    (it used to fail those items after the fact, unretried)."""
    ids = scripted.info["source_scan_ids"][:3]
    job = write_job(tmp_path, scripted, ids)
    scripted.configure(storage_cut_short=2)
    assert main(["run", str(job)]) == 0
    assert scripted.configure()["storage_cut_short"] == 0, "the fault was not served"
    checksums = {
        r[0]
        for r in query(
            scripted,
            "source",
            "SELECT f.checksum FROM realograms_implementation_scanfile sf "
            "JOIN master_data_implementation_fileupload f ON f.id = sf.file_id WHERE sf.scan_id = ANY(%s)",
            ids,
        )
    }
    reports = ("manifest.csv", "failures.csv", OWNER_MARKER)
    images = [p for p in (tmp_path / "images").iterdir() if p.name not in reports]
    assert len(images) == 9
    assert {hashlib.md5(p.read_bytes()).hexdigest() for p in images} == checksums

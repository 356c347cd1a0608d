"""Signed storage links that expire (issue 13, point 6): the sandbox's links answer 403 once
expired, as S3's and Azure's do, and both modes that download fetch a fresh link once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from copy_support import assert_copied, query, read_failures, scans_in_store, write_copy_job
from test_download import write_job

from scanjobs.cli import main
from scanjobs.ownership import OWNER_MARKER
from scanjobs.sandbox import Sandbox

pytestmark = pytest.mark.integration

META_ROUTE = "/api/v1/master-data/file-upload/{id}/"
STORAGE_ROUTE = "/_storage/{path}"


@pytest.fixture
def links(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The shared sandbox, its links as they were after the test (none left expired)."""
    try:
        yield sandbox
    finally:
        sandbox.configure(link_lifetime=3600, expired_links=0)


def requests_of(sb: Sandbox, route: str, status: int | None = None, instance: str = "source") -> int:
    rows = sb.stats(instance)["requests"]
    return sum(r["count"] for r in rows if r["route"] == route and (status is None or r["status"] == status))


def a_file_link(sb: Sandbox) -> str:
    """The storage link the source's file metadata gives for one of its files."""
    inst = sb.info["instances"]["source"]
    token = requests.post(
        f"{inst['api_url']}/api/v4/token-auth/",
        json={"username": inst["username"], "password": inst["password"]},
        timeout=10,
    ).json()["token"]
    file_id = query(sb, "source", "SELECT min(file_id) FROM realograms_implementation_scanfile")[0][0]
    meta = requests.get(
        f"{inst['api_url']}/api/v1/master-data/file-upload/{file_id}/",
        headers={"Authorization": f"Token {token}"},
        timeout=10,
    )
    meta.raise_for_status()
    return str(meta.json()["file"])


def images_in(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name not in ("manifest.csv", "failures.csv", OWNER_MARKER)]


def test_the_sandbox_signs_its_links_and_refuses_them_once_expired(links: Sandbox) -> None:
    """issue 13, point 6: a link is good for `link_lifetime` seconds; expired, or not the one it
    signed, it answers 403 with S3's XML error."""
    good = a_file_link(links)
    assert "X-Amz-Signature=" in good and "X-Amz-Expires=3600" in good
    assert requests.get(good, timeout=10).status_code == 200
    unsigned = requests.get(good.split("?")[0], timeout=10)
    assert unsigned.status_code == 403 and "<Code>AccessDenied</Code>" in unsigned.text
    tampered = requests.get(good.replace("X-Amz-Expires=3600", "X-Amz-Expires=99999"), timeout=10)
    assert tampered.status_code == 403 and "SignatureDoesNotMatch" in tampered.text
    links.configure(link_lifetime=0)  # every link given from now on has expired at once
    expired = requests.get(a_file_link(links), timeout=10)
    assert expired.status_code == 403 and "Request has expired" in expired.text
    assert requests.get(good, timeout=10).status_code == 200  # signed for an hour, as it was
    links.configure(link_lifetime=3600, expired_links=1)  # the next link only
    assert requests.get(a_file_link(links), timeout=10).status_code == 403
    assert requests.get(a_file_link(links), timeout=10).status_code == 200


def test_download_mode_fetches_a_fresh_link_once(links: Sandbox, tmp_path: Path) -> None:
    """issue 13, point 6: the first link it is given has expired (403): the file's metadata is
    fetched again for a fresh link, and the run completes (the file failed before)."""
    ids = links.info["source_scan_ids"][:2]
    job = write_job(tmp_path, links, ids)
    links.reset_stats()
    links.configure(expired_links=1)
    assert main(["run", str(job)]) == 0
    files = 2 * links.options.files_per_scan
    assert len(images_in(tmp_path / "images")) == files
    assert requests_of(links, STORAGE_ROUTE, 403) == 1
    assert requests_of(links, META_ROUTE) == files + 1  # one more: the fresh link


def test_download_mode_fails_a_file_whose_fresh_link_is_refused_too(
    links: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """issue 13, point 6: once, not forever: a fresh link refused as well fails the file, saying
    so (without the link's signature); the rerun, with links that work, completes."""
    ids = links.info["source_scan_ids"][2:3]
    job = write_job(tmp_path, links, ids)
    links.reset_stats()
    links.configure(link_lifetime=0)
    assert main(["run", str(job)]) == 1
    files = links.options.files_per_scan
    assert requests_of(links, META_ROUTE) == 2 * files
    assert requests_of(links, STORAGE_ROUTE, 403) == 2 * files
    with open(tmp_path / "images" / "failures.csv", encoding="utf-8") as fh:
        failures = fh.read()
    assert "403 Forbidden" in failures and "fresh link" in failures
    assert "X-Amz-Signature" not in failures + capsys.readouterr().out
    links.configure(link_lifetime=3600)
    assert main(["run", str(job), "--retry-failed"]) == 0
    assert len(images_in(tmp_path / "images")) == files


def test_copy_fetches_a_fresh_link_once(links: Sandbox, tmp_path: Path) -> None:
    """issue 13, point 6: the same in copy mode, and the create carries input_type (point 8)."""
    store, ids = links.new_target_store(), links.info["source_scan_ids"][12:14]
    job = write_copy_job(tmp_path, links, store=store, scan_ids=ids)
    links.reset_stats()
    links.configure(expired_links=1)
    assert main(["run", str(job)]) == 0
    assert not read_failures(job)
    assert_copied(links, job, store, ids)
    assert requests_of(links, STORAGE_ROUTE, 403) == 1
    assert requests_of(links, META_ROUTE) == 2 * links.options.files_per_scan + 1
    assert all(payload["input_type"] == "image" for payload in scans_in_store(links, store).values())

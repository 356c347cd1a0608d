"""Download mode against the sandbox: names, bytes, hostile sections, resume, killed mid-file."""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from scanjobs.cli import main
from scanjobs.modes.download import PART_PREFIX
from scanjobs.modes.download.naming import extension_for, file_name
from scanjobs.ownership import OWNER_MARKER
from scanjobs.sandbox import Sandbox
from scanjobs.sandboxjobs import write_sandbox_instances

# 255 characters: the column's limit (300 and a NUL byte can't be stored in PostgreSQL text; the
# unit tests of modes/naming.py cover them)
HOSTILE = ["../../etc/passwd", "a/b", "a_b", "a\\b", "CON", "..", "x" * 255, "Cafe\u0301", "Caf\u00e9"]


@pytest.fixture(scope="module")
def small(sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    return sandbox_factory(scans=12, files_per_scan=2, processing_delay=0.5, seed=11)


def write_job(folder: Path, sb: Sandbox, ids: list[int], name: str = "download.yaml") -> Path:
    write_sandbox_instances(sb.info, folder)
    job = folder / name
    job.write_text(
        textwrap.dedent(f"""\
        version: 1
        mode: download
        source: sandbox-source
        scans: {{ids: {ids}}}
        batch: {{workers: {{download: 8}}}}
        retry: {{attempts: 3, backoff: {{initial: 0.05, max: 0.5}}, timeout: {{connect: 2, read: 5}}}}
        output: images
        """)
    )
    return job


def source_truth(sb: Sandbox, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Independent SQL: per scan its files (id, checksum, original name, content type) in order,
    the first report's section name and the store POG id of its payload."""
    out: dict[int, dict[str, Any]] = {}
    with psycopg.connect(**sb.db("source")) as conn:
        for scan_id in ids:
            files = conn.execute(
                "SELECT f.id, f.checksum, f.original_filename, f.content_type "
                "FROM realograms_implementation_scanfile sf JOIN master_data_implementation_fileupload f "
                "ON f.id = sf.file_id WHERE sf.scan_id = %s ORDER BY sf.id",
                (scan_id,),
            ).fetchall()
            section = conn.execute(
                "SELECT r.section_name FROM realograms_implementation_scan s "
                "JOIN planograms_compliance_planogramcompliancereport r "
                "ON r.realogram_id = s.active_realogram_id AND r.is_last_active "  # issue 13, point 11
                "WHERE s.id = %s ORDER BY r.id LIMIT 1",
                (scan_id,),
            ).fetchone()
            raw = conn.execute(
                "SELECT COALESCE(provided_values->'_raw_data', provided_values) "
                "FROM realograms_implementation_scan "
                "WHERE id = %s",
                (scan_id,),
            ).fetchone()
            pog = raw[0].get("store_planogram", raw[0].get("store_planogram_id")) if raw else None
            out[scan_id] = {"files": files, "section": section[0] if section else None, "pog": pog}
    return out


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_download_names_bytes_and_rerun(small: Sandbox, tmp_path: Path) -> None:
    ids = small.info["source_scan_ids"][:12]
    job = write_job(tmp_path, small, ids)
    assert main(["run", str(job)]) == 0
    out = tmp_path / "images"
    truth = source_truth(small, ids)
    expected: dict[str, str] = {}
    for scan_id, t in truth.items():
        for n, (_fid, checksum, original, ctype) in enumerate(t["files"], start=1):
            name = file_name(
                scan_id,
                t["section"],
                t["pog"],
                index=n if len(t["files"]) > 1 else None,
                extension=extension_for(original, ctype),
            )
            expected[name] = checksum
    images = {p.name for p in out.iterdir() if p.name not in ("manifest.csv", "failures.csv", OWNER_MARKER)}
    assert images == set(expected) and len(images) == 24
    for name, checksum in expected.items():
        assert hashlib.md5((out / name).read_bytes()).hexdigest() == checksum  # the platform's checksum
    with open(out / "manifest.csv", newline="") as fh:
        manifest = list(csv.DictReader(fh))
    assert len(manifest) == 24
    sha256 = {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in expected}
    assert {r["path"]: r["sha256"] for r in manifest} == sha256

    before = listing(out)
    images_before = {k: v for k, v in before.items() if k not in ("manifest.csv", "failures.csv")}
    small.reset_stats()
    assert main(["run", str(job)]) == 0
    after = listing(out)
    assert {k: v for k, v in after.items() if k in images_before} == images_before  # nothing rewritten
    stats = small.stats("source")
    assert not [r for r in stats["requests"] if r["route"].startswith("/_storage/")]


def test_hostile_section_names_stay_inside(small: Sandbox, tmp_path: Path) -> None:
    ids = small.info["source_scan_ids"][:12]
    with psycopg.connect(**small.db("source")) as conn:
        sections = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT ON (s.id) r.section_id FROM realograms_implementation_scan s "
                "JOIN planograms_compliance_planogramcompliancereport r "
                "ON r.realogram_id = s.active_realogram_id "
                "WHERE s.id = ANY(%s) ORDER BY s.id, r.id",
                (ids,),
            ).fetchall()
        ]
    distinct_sections = list(dict.fromkeys(sections))
    assert len(distinct_sections) >= 5
    # spread the hostile names over the sections these scans are named after
    for section_id, name in zip(distinct_sections, HOSTILE, strict=False):
        small.rename_section(section_id, name)
    job = write_job(tmp_path, small, ids)
    assert main(["run", str(job)]) == 0
    out = (tmp_path / "images").resolve()
    files = [p for p in out.rglob("*") if p.is_file() and p.name != OWNER_MARKER]
    images = [p for p in files if p.name not in ("manifest.csv", "failures.csv")]
    assert len(images) == 24 and len({p.name for p in images}) == 24
    for p in files:
        assert p.resolve().parent == out
        assert not p.name.startswith(".")
        assert len(p.name.encode()) <= 255
    # nothing escaped: no file appeared beside the job folder
    assert {p.name for p in tmp_path.iterdir()} <= {
        "images",
        "download.yaml",
        "instances.yaml",
        ".env",
        "download.state.sqlite",
        "download.state.sqlite-wal",
        "download.state.sqlite-shm",
        "download.state.sqlite-verified",
        "download.state.lock",
        "download.state.log",
    }


def test_killed_mid_file_leaves_no_partial_file(small: Sandbox, tmp_path: Path) -> None:
    ids = small.info["source_scan_ids"][:6]
    job = write_job(tmp_path, small, ids)
    env = {**os.environ, "SCANJOBS_FAILPOINTS": "mid_download:4"}
    killed = subprocess.run(
        [sys.executable, "-m", "scanjobs", "run", str(job)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -9, killed.stderr
    out = tmp_path / "images"
    finals = [p for p in out.iterdir() if not p.name.startswith(PART_PREFIX) and p.name != OWNER_MARKER]
    truth = source_truth(small, ids)
    sums = {c for t in truth.values() for (_f, c, _o, _t) in t["files"]}
    for p in finals:  # whatever has a final name is complete
        if p.suffix != ".csv":
            assert hashlib.md5(p.read_bytes()).hexdigest() in sums
    rerun = subprocess.run(
        [sys.executable, "-m", "scanjobs", "run", str(job)], capture_output=True, text=True, timeout=120
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    names = [p.name for p in out.iterdir()]
    assert not [n for n in names if n.startswith(PART_PREFIX)]
    images = [out / n for n in names if not n.endswith(".csv") and n != OWNER_MARKER]
    assert len(images) == 12
    assert {hashlib.md5(p.read_bytes()).hexdigest() for p in images} == sums


def test_limit_gets_past_scans_without_files(small: Sandbox, tmp_path: Path) -> None:
    """Issue 12, point 8: --limit took the same file-less scan as new on every run."""
    empty = small.info["empty_scan_ids"][0]
    ids = small.info["source_scan_ids"][:2]
    job = write_job(tmp_path, small, [empty, *ids])
    images = tmp_path / "images"
    downloaded: list[int] = []
    for _ in range(3):
        assert main(["run", str(job), "--limit", "1"]) == 1  # the empty scan stays a failure
        downloaded.append(len([p for p in images.iterdir() if p.suffix != ".csv" and p.name != OWNER_MARKER]))
    assert downloaded == [0, 2, 4]  # each run took the next new scan (2 files each)
    with open(images / "failures.csv", newline="") as fh:
        assert [(f["scan_id"], f["error_class"]) for f in csv.DictReader(fh)] == [(str(empty), "NoFiles")]
    assert main(["run", str(job), "--accept-permanent"]) == 0


def test_limit_unknown_ids_plan_and_exit_codes(
    small: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = small.info["source_scan_ids"][:4]
    job = write_job(tmp_path, small, [*ids, 99999999])
    assert main(["plan", str(job)]) == 1  # runnable, but one id does not exist
    out = capsys.readouterr().out
    assert "4 scan(s) found, 1 not found: 99999999" in out and "8 file(s)" in out
    assert main(["run", str(job), "--limit", "2"]) == 1  # two scans now, the unknown id fails
    images = tmp_path / "images"
    assert len([p for p in images.iterdir() if p.suffix not in (".csv", ".json")]) == 4
    with open(images / "failures.csv", newline="") as fh:
        failures = list(csv.DictReader(fh))
    assert [(f["scan_id"], f["error_class"]) for f in failures] == [("99999999", "NotFoundOnSource")]
    assert main(["run", str(job)]) == 1
    assert len([p for p in images.iterdir() if p.suffix not in (".csv", ".json")]) == 8
    # an unreachable database: exit 5 with a clear message, nothing written
    broken = tmp_path / "broken"
    broken.mkdir()
    write_job(broken, small, ids)
    text = (broken / "instances.yaml").read_text()
    port = str(small.info["instances"]["source"]["db"]["port"])
    (broken / "instances.yaml").write_text(text.replace(f"port: {port}", "port: 9"))
    assert main(["run", str(broken / "download.yaml")]) == 5
    assert "cannot connect to database source at 127.0.0.1:9" in capsys.readouterr().err


def test_removed_scans_leave_the_manifest(small: Sandbox, tmp_path: Path) -> None:
    """Issue 12, point 19 (download): scans removed from the job leave manifest.csv; adding them
    back finds their files already there (nothing downloaded twice)."""
    ids = small.info["source_scan_ids"][:3]
    job = write_job(tmp_path, small, ids)
    assert main(["run", str(job)]) == 0
    manifest = tmp_path / "images" / "manifest.csv"

    def listed() -> set[str]:
        with open(manifest, newline="", encoding="utf-8") as fh:
            return {row["scan_id"] for row in csv.DictReader(fh)}

    assert listed() == {str(i) for i in ids}
    write_job(tmp_path, small, ids[:1])
    assert main(["run", str(job)]) == 0
    assert listed() == {str(ids[0])}
    write_job(tmp_path, small, ids)
    small.reset_stats()
    assert main(["run", str(job)]) == 0
    assert listed() == {str(i) for i in ids}
    assert not [r for r in small.stats("source")["requests"] if r["route"] != "/api/v4/token-auth/"]

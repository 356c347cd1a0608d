"""What jobs write into their output folders, against the sandbox: platform text stays data in
every report, a rerun that changes nothing writes nothing, and each folder has one owner job."""

from __future__ import annotations

import csv
import os
import stat
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import psycopg
import pytest
from copy_support import scans_in_store, write_copy_job

from scanjobs.cli import main
from scanjobs.ownership import OWNER_MARKER
from scanjobs.sandbox import Sandbox
from scanjobs.sandboxjobs import write_sandbox_instances

FORMULA = '=HYPERLINK("http://attacker.example/","open")'
# one name per section the scans are named after; a BEL is a character Excel cannot hold
HOSTILE = [FORMULA, "@SUM(1+1)", "bell\x07section", "-2+3", "+cmd|' /C calc'!A0"]


@pytest.fixture(scope="module")
def sb(sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    return sandbox_factory(scans=8, files_per_scan=1, processing_delay=0.3, seed=21)


def download_job(folder: Path, sb: Sandbox, ids: list[int], *, name: str = "download", output: str) -> Path:
    write_sandbox_instances(sb.info, folder)
    job = folder / f"{name}.yaml"
    job.write_text(
        textwrap.dedent(f"""\
        version: 1
        mode: download
        source: sandbox-source
        scans: {{ids: {ids}}}
        retry: {{attempts: 3, backoff: {{initial: 0.05, max: 0.5}}, timeout: {{connect: 2, read: 5}}}}
        output: {output}
        """),
        encoding="utf-8",
    )
    return job


def report_sections(sb: Sandbox, ids: list[int]) -> list[int]:
    """The section ids of the scans' compliance reports (what the reports and file names show)."""
    with psycopg.connect(**sb.db("source")) as conn:
        rows = conn.execute(
            "SELECT DISTINCT r.section_id FROM realograms_implementation_scan s "
            "JOIN planograms_compliance_planogramcompliancereport r "
            "ON r.realogram_id = s.active_realogram_id "
            "WHERE s.id = ANY(%s) AND r.section_id IS NOT NULL ORDER BY r.section_id",
            (ids,),
        ).fetchall()
    return [r[0] for r in rows]


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_hostile_platform_text_is_data_in_every_report(sb: Sandbox, tmp_path: Path) -> None:
    """issue 12, point 10: section names like `=HYPERLINK(...)` and with a control character:
    the copy's analysis is written (no exit 3), its Excel cells are text, and no CSV (analysis,
    details, download manifest) holds a cell that starts a formula."""
    ids = sb.info["source_scan_ids"][:8]
    sections = report_sections(sb, ids)
    assert len(sections) >= len(HOSTILE)
    for section_id, name in zip(sections, HOSTILE, strict=False):
        sb.rename_section(section_id, name)

    job = write_copy_job(
        tmp_path,
        sb,
        store=sb.new_target_store(),
        scan_ids=ids,
        analysis={"enabled": True, "wait_for_processing": "2m"},
    )
    assert main(["run", str(job)]) == 0
    out = tmp_path / "out-copy"
    ws = openpyxl.load_workbook(out / "analysis_with_comments.xlsx")["Analysis"]
    header = [c.value for c in ws[1]]
    names = [row[header.index("source_section_name")] for row in ws.iter_rows(min_row=2)]
    assert {c.value for c in names} >= {FORMULA, "@SUM(1+1)", "bell\ufffdsection", "-2+3"}
    assert {c.data_type for c in names if c.value is not None} == {"s"}
    assert not [c for row in ws.iter_rows() for c in row if c.data_type == "f"]

    for csv_name in ("analysis_with_comments.csv", "source_scandetails.csv"):
        rows = read_rows(out / csv_name)
        cells = [v for r in rows for v in r.values()]
        assert "'" + FORMULA in cells and "'@SUM(1+1)" in cells and "bell\x07section" in cells
        assert not [v for v in cells if v[:1] in ("=", "+", "@", "\t", "\r")], csv_name
        assert not [v for v in cells if v.startswith("-") and not _number(v)], csv_name

    images = download_job(tmp_path, sb, ids, output="images")
    assert main(["run", str(images)]) == 0
    manifest = read_rows(tmp_path / "images" / "manifest.csv")
    named = {r["section"] for r in manifest}
    assert named & {"'" + FORMULA, "'@SUM(1+1)", "bell\x07section", "'-2+3", "'+cmd|' /C calc'!A0"}
    assert not [r for r in manifest if r["section"][:1] in ("=", "+", "-", "@")]
    assert all(r["scan_id"].isdigit() and r["bytes"].isdigit() for r in manifest)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def stamps(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_a_rerun_that_changes_nothing_writes_nothing(sb: Sandbox, tmp_path: Path) -> None:
    """issue 12, point 21: a second download run with nothing to do leaves manifest.csv and
    failures.csv as they were (same inode, same mtime); every file honours the umask (the
    reports were 0600 while the images were 0644)."""
    ids = sb.info["source_scan_ids"][:3]
    job = download_job(tmp_path, sb, [*ids, 99999999], output="images")
    saved = os.umask(0o022)
    try:
        assert main(["run", str(job)]) == 1  # the unknown id fails
    finally:
        os.umask(saved)
    out = tmp_path / "images"
    files = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert {"manifest.csv", "failures.csv"} <= {p.name for p in files} and len(files) == 5
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: 0o644 for p in files}
    assert len(read_rows(out / "failures.csv")) == 1

    before = stamps(out)
    assert main(["run", str(job)]) == 1
    assert stamps(out) == before


def analysed_sources(out: Path) -> set[int]:
    return {int(r["source_scan_id"]) for r in read_rows(out / "analysis_with_comments.csv")}


def test_two_jobs_cannot_share_an_output_folder(
    sb: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """issue 12, point 14: a second job naming the first one's output folder is refused (exit 2,
    naming the owner) before it does anything; the owner goes on, also after `--restart`; and an
    analysis is "up to date" only when the report on disk is the one this job wrote (the
    folder's reports were another job's after the marker was deleted)."""
    ids = sb.info["source_scan_ids"]
    both: dict[str, Any] = {"analysis": {"enabled": True, "wait_for_processing": "2m"}, "output": "shared"}
    a_ids, b_ids = ids[:2], ids[2:4]
    a_store, b_store = sb.new_target_store(), sb.new_target_store()
    a = write_copy_job(tmp_path, sb, store=a_store, scan_ids=a_ids, name="a", **both)
    b = write_copy_job(tmp_path, sb, store=b_store, scan_ids=b_ids, name="b", **both)
    out = tmp_path / "shared"

    assert main(["run", str(a)]) == 0
    assert analysed_sources(out) == set(a_ids)
    before = stamps(out)
    capsys.readouterr()
    assert main(["plan", str(b)]) == 2  # plan says what run meets (issue 12, point 17)
    verdict = capsys.readouterr().out.splitlines()[-1]
    assert verdict.startswith("verdict: a run would stop: output: the output folder"), verdict
    assert main(["run", str(b)]) == 2
    err = capsys.readouterr().err
    assert f"the output folder {out} belongs to another job: copy job 'a' ({a})" in err
    assert stamps(out) == before
    assert not scans_in_store(sb, b_store), "a refused job must do nothing"

    assert main(["run", str(a)]) == 0
    assert "analysis up to date" in capsys.readouterr().out
    assert stamps(out) == before
    assert main(["run", str(a), "--restart"]) == 0  # starting over: the same job, its folder
    assert analysed_sources(out) == set(a_ids)

    # the user hands the folder to b: b's reports replace a's, and a is refused
    (out / OWNER_MARKER).unlink()
    assert main(["run", str(b)]) == 0
    assert analysed_sources(out) == set(b_ids)
    capsys.readouterr()
    assert main(["run", str(a)]) == 2
    assert "belongs to another job: copy job 'b'" in capsys.readouterr().err
    # and back to a: its recorded analysis is not the report on disk (b's), so it analyses again
    (out / OWNER_MARKER).unlink()
    assert main(["run", str(a)]) == 0
    assert "analysis up to date" not in capsys.readouterr().out
    assert analysed_sources(out) == set(a_ids)
    assert {int(r["Source_Scan_ID"]) for r in read_rows(out / "scan_mapping.csv")} == set(a_ids)

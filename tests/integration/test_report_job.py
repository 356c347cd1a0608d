"""Issue 15, points 2 and 8 against the sandbox: the report's scan figures, its Job sheet and
`analysis_job.json`, frozen panes; `run --reanalyze` after the target's data changed; and
`status --runs`."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from copy_support import output_dir, scans_in_store, write_copy_job

from scanjobs import __version__
from scanjobs.cli import main
from scanjobs.jobfile import load_job
from scanjobs.report.excel import flatten
from scanjobs.report.rules import Comment
from scanjobs.sandbox import Sandbox


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def json_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@dataclass
class Copied:
    sb: Sandbox
    job: Path
    out: Path
    store: int


@pytest.fixture(scope="module")
def copied(sandbox_factory: Callable[..., Sandbox], tmp_path_factory: pytest.TempPathFactory) -> Copied:
    """8 scans copied and analysed, on a sandbox of this module's own (its target's data is
    changed by the reanalysis test)."""
    sb = sandbox_factory(scans=8, files_per_scan=1, processing_delay=0.1, ma_accuracy=0.6, seed=31)
    folder = tmp_path_factory.mktemp("report-job")
    store = sb.new_target_store()
    analysis = {"enabled": True, "wait_for_processing": "2m"}
    job = write_copy_job(folder, sb, store=store, scan_ids=sb.info["source_scan_ids"], analysis=analysis)
    assert main(["run", str(job)]) == 0
    return Copied(sb, job, output_dir(job), store)


def test_summary_gives_scans_per_comment_not_only_rows(copied: Copied) -> None:
    rows = read_csv(copied.out / "analysis_with_comments.csv")
    scans_with = Counter(c for _, c in {(r["source_scan_id"], r["comment"]) for r in rows})
    total = len({r["source_scan_id"] for r in rows})
    assert total == 8
    ws = openpyxl.load_workbook(copied.out / "analysis_with_comments.xlsx")["Summary"]
    assert [c.value for c in ws[1]][:4] == ["Comment", "Rows", "Scans", "% of scans"]
    table = {r[0]: r[1:4] for r in ws.iter_rows(min_row=2, max_row=len(Comment) + 1, values_only=True)}
    rows_with = Counter(r["comment"] for r in rows)
    for c in Comment:
        scans = scans_with.get(c.text, 0)
        assert table[c.text] == (rows_with.get(c.text, 0), scans, round(100 * scans / total, 1)), c.text
    assert [ws.cell(len(Comment) + 2, col).value for col in (1, 2, 3)] == ["Total", len(rows), total]


def test_job_sheet_and_sidecar_say_which_job_and_run_wrote_the_report(copied: Copied) -> None:
    sidecar = json.loads((copied.out / "analysis_job.json").read_text(encoding="utf-8"))
    job = load_job(copied.job)
    assert sidecar["job"] == {
        "name": "copy",
        "file": str(copied.job.resolve()),
        "mode": "copy",
        "fingerprint": job.fingerprint(),
        "output": str(copied.out.resolve()),
    }
    assert sidecar["source"] == {"name": "sandbox-source", "api_url": copied.sb.api("source").rstrip("/")}
    assert sidecar["target"] == {
        "name": "sandbox-target",
        "api_url": copied.sb.api("target").rstrip("/"),
        "store": copied.store,
    }
    assert sidecar["strategy"] == "auto"
    assert sidecar["scans"] == {"kind": "ids", "count": 8, "ids": copied.sb.info["source_scan_ids"]}
    assert sidecar["run"]["id"] == 1 and sidecar["run"]["reanalyze"] is False
    assert sidecar["run"]["started"] <= sidecar["run"]["finished"]
    assert sidecar["analysis"]["pairs"] == 8 and sidecar["analysis"]["scans"] == 8
    assert sidecar["scanjobs_version"] == __version__

    wb = openpyxl.load_workbook(copied.out / "analysis_with_comments.xlsx")
    assert wb.sheetnames == ["Analysis", "Summary", "Job"]
    # the header row, and the scan id columns where a sheet has them, stay in view
    assert {name: wb[name].freeze_panes for name in wb.sheetnames} == {
        "Analysis": "C2",
        "Summary": "B2",
        "Job": "B2",
    }
    sheet = {field: value for field, value in wb["Job"].iter_rows(min_row=2, values_only=True)}
    assert sheet == dict(flatten(sidecar))

    secrets = [
        line.split("=", 1)[1] for line in (copied.job.parent / ".env").read_text().splitlines() if "=" in line
    ]
    text = (copied.out / "analysis_job.json").read_text(encoding="utf-8") + repr(sheet)
    assert secrets and not [s for s in secrets if s and s in text]


def test_reanalyze_rewrites_the_analysis_from_current_data_and_copies_nothing(
    copied: Copied, capsys: pytest.CaptureFixture[str]
) -> None:
    before = read_csv(copied.out / "analysis_with_comments.csv")
    scans_before = scans_in_store(copied.sb, copied.store)
    row = next(r for r in before if r["target_section_id"] and r["comment"] == Comment.NO_ISSUES.text)
    section = int(row["target_section_id"])
    copied.sb.rename_section(section, "renamed after the copy", instance="target")

    capsys.readouterr()
    assert main(["run", str(copied.job)]) == 0  # a plain rerun: the analysis is up to date
    assert "analysis up to date" in capsys.readouterr().out
    assert read_csv(copied.out / "analysis_with_comments.csv") == before

    assert main(["run", str(copied.job), "--reanalyze", "--json"]) == 0
    events = json_events(capsys.readouterr().out)
    started = next(e for e in events if e["event"] == "selected")
    assert started["reanalyze"] is True and started["todo"] == 0
    assert not [e for e in events if e["event"] == "item"], "a reanalysis copies nothing"
    assert scans_in_store(copied.sb, copied.store) == scans_before

    after = read_csv(copied.out / "analysis_with_comments.csv")
    renamed = [r for r in after if r["target_section_id"] == str(section)]
    assert renamed and {r["target_section_name"] for r in renamed} == {"renamed after the copy"}
    assert {r["comment"] for r in renamed} <= {
        Comment.WRONG_POG.text,
        Comment.DIFFERENT_SECTION.text,
        Comment.NO_SOURCE_REPORT.text,
    }
    assert Counter(r["comment"] for r in after) != Counter(r["comment"] for r in before)
    sidecar = json.loads((copied.out / "analysis_job.json").read_text(encoding="utf-8"))
    assert sidecar["run"]["reanalyze"] is True and sidecar["run"]["id"] == 3

    assert main(["run", str(copied.job)]) == 0  # and the new analysis is the one up to date
    assert "analysis up to date" in capsys.readouterr().out


def test_status_runs_lists_each_run_with_its_exit_code_and_counts(
    copied: Copied, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["status", str(copied.job), "--runs", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert len(runs) >= 1 and all(r["exit_code"] == 0 and r["status"] == "ok" for r in runs)
    assert runs[0]["summary"]["done"] == 8 and runs[0]["summary"]["failed"] == 0
    assert all(r["started"] <= r["finished"] for r in runs)
    assert main(["status", str(copied.job), "--runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(f"{len(runs)} run(s)") and len(lines) == len(runs) + 2

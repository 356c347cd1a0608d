"""Quality gate acceptance (issue 15, point 3): a gate breached in the sandbox exits 6 and names the
limit and by how much; a passing gate exits 0; the reports are written either way."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from copy_support import read_mapping, write_copy_job
from test_analysis import expected_rows

from scanjobs.cli import main
from scanjobs.errors import ExitCode
from scanjobs.sandbox import Sandbox

pytestmark = pytest.mark.integration

SCANS = 12


@pytest.fixture(scope="module")
def copied(
    sandbox_factory: Callable[..., Sandbox], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """A copy job with its analysis, and per comment how many scans the databases give it.

    On a sandbox of its own, so that its target scans (whose MA outcome depends on their ids)
    are the same whatever ran before."""
    sandbox = sandbox_factory(scans=SCANS, files_per_scan=1, processing_delay=0.2, ma_accuracy=0.6, seed=41)
    folder = tmp_path_factory.mktemp("gate")
    ids = list(sandbox.info["source_scan_ids"])[:SCANS]
    analysis = {"enabled": True, "wait_for_processing": "2m"}
    job = write_copy_job(folder, sandbox, store=sandbox.new_target_store(), scan_ids=ids, analysis=analysis)
    assert main(["run", str(job)]) == ExitCode.OK
    rows = expected_rows(sandbox, sorted(read_mapping(job).items()))
    scans = Counter(comment for _, comment in {(r.source_scan_id, r.comment) for r in rows})
    return {"folder": folder, "job": job, "scans": scans, "sandbox": sandbox}


def analyze_job(copied: dict[str, Any], gate: dict[str, Any]) -> Path:
    path = copied["folder"] / "gated.yaml"
    body = {
        "version": 1,
        "mode": "analyze",
        "source": "sandbox-source",
        "target": {"instance": "sandbox-target"},
        "scans": {"from_job": copied["job"].name},
        "analysis": {"wait_for_processing": "1m", "gate": gate},
    }
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


def gate_event(out: str) -> dict[str, Any]:
    return next(e for e in map(json.loads, out.splitlines()) if e["event"] == "gate")


def test_a_breached_gate_exits_6_and_names_the_limit(
    copied: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    comment, n = copied["scans"].most_common(1)[0]
    share = round((n - 0.5) / SCANS * 100, 2)  # just under what the analysis holds
    # another limit, which holds: a comment other than the breached one (the same key twice in a
    # dict is one limit, and the breach went unseen when the most common comment was this one)
    other = "No Issues" if comment == "Wrong POG Name Mapping" else "Wrong POG Name Mapping"
    job = analyze_job(copied, {comment: n - 1, other: "100%"})
    report = copied["folder"] / "results" / "gated" / "analysis_with_comments.xlsx"
    capsys.readouterr()
    assert main(["run", str(job), "--json"]) == ExitCode.GATE == 6
    gate = gate_event(capsys.readouterr().out)
    assert gate["verdict"] == "breached" and gate["report"] == "analysis"
    limits = {limit["subject"]: limit for limit in gate["limits"]}
    assert limits[comment] == {
        "subject": comment,
        "limit": str(n - 1),
        "actual": str(n),
        "scans": n,
        "total": SCANS,
        "verdict": "breached",
        "excess_scans": 1,
    }
    assert limits[other]["verdict"] == "ok"
    assert report.is_file()  # the reports are written all the same

    # the plain line says which limit, and by how much (a share: in points and scans)
    job = analyze_job(copied, {comment: f"{share:g}%"})
    assert main(["run", str(job)]) == ExitCode.GATE
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("gate "))
    allowed = math.floor(share / 100 * SCANS)
    assert line.startswith(f"gate breached (analysis): {comment}: {n} of {SCANS} scans")
    assert f"limit {share:g}%: {n - allowed} scan(s) over" in line


def test_a_passing_gate_exits_0(copied: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    comment, n = copied["scans"].most_common(1)[0]
    job = analyze_job(copied, {comment: n, "Not Copied": 0})
    assert main(["run", str(job), "-q"]) == ExitCode.OK
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("gate "))
    assert line.startswith("gate passed (analysis): ") and f"{comment}: {n} of {SCANS} scans" in line


def test_a_copy_job_s_gate_judges_its_analysis_also_when_up_to_date(
    copied: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A rerun that copies nothing and keeps its analysis still gives the gate's verdict."""
    comment, n = copied["scans"].most_common(1)[0]
    job = copied["job"]
    data = yaml.safe_load(job.read_text())
    data["analysis"]["gate"] = {comment: n - 1}
    job.write_text(yaml.safe_dump(data), encoding="utf-8")
    capsys.readouterr()
    assert main(["run", str(job), "--json"]) == ExitCode.GATE
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(e["event"] == "info" and "analysis up to date" in e["message"] for e in events)
    assert gate_event("\n".join(json.dumps(e) for e in events))["limits"][0]["scans"] == n
    data["analysis"]["gate"] = {comment: n}
    job.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["run", str(job)]) == ExitCode.OK

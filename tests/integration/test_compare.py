"""Compare acceptance (issue 15, point 1): the same 30 scans copied twice, the sandbox's MA accuracy
changed in between; the compare's classes against an independent reading of both targets."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import yaml
from copy_support import read_mapping, write_copy_job

# The independent analysis of the analysis acceptance test: its own SQL and its own rules.
from test_analysis import Expected, expected_rows

from scanjobs.cli import main
from scanjobs.errors import ExitCode
from scanjobs.sandbox import Sandbox

pytestmark = pytest.mark.integration

# The README's ranking, written out again: best first; the comments not listed judged nothing.
RANKS = {
    "No Issues": 0,
    "Target Has Higher POG% Than Source": 1,
    "Target Has Additional Section (Source Does Not)": 2,
    "Source Report Missing": 3,
    "Same POG Name but Different Section": 4,
    "Wrong POG Name Mapping": 5,
    "Target Report Missing": 6,
    "Target Processing Failed (error)": 7,
    "Target Processing Failed (interrupted)": 7,
}
SCANS = 30


def expected_class(b: Expected | None, c: Expected | None) -> str:
    if c is None:
        return "only_in_baseline"
    if b is None:
        return "only_in_candidate"
    rb, rc = RANKS.get(b.comment), RANKS.get(c.comment)
    if rb is None or rc is None:
        return "unchanged" if b.comment == c.comment else "not_comparable"
    if rb != rc:
        return "improved" if rc < rb else "regressed"
    pb = b.target["pre_pog_pct"] if b.target else None
    pc = c.target["pre_pog_pct"] if c.target else None
    if pb is not None and pc is not None and pc != pb:
        return "improved" if pc > pb else "regressed"
    return "unchanged"


def keyed(rows: list[Expected]) -> dict[tuple[Any, ...], Expected]:
    """Rows by (source scan, whose section, its name, occurrence)."""
    out: dict[tuple[Any, ...], Expected] = {}
    seen: Counter[tuple[Any, ...]] = Counter()
    for row in rows:
        if row.comment == "Source Report Missing":
            base: tuple[Any, ...] = (row.source_scan_id, "target", row.target and row.target["section_name"])
        else:
            base = (row.source_scan_id, "source", row.source and row.source["section_name"])
        out[(*base, seen[base])] = row
        seen[base] += 1
    return out


def per_scan(pairs: list[tuple[Any, str]]) -> dict[int, Counter[str]]:
    out: dict[int, Counter[str]] = {}
    for scan, value in pairs:
        out.setdefault(int(scan), Counter())[value] += 1
    return out


def run(job: Path, *extra: str) -> int:
    return main(["run", str(job), *extra])


@pytest.fixture(scope="module")
def twice(
    sandbox_factory: Callable[..., Sandbox], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """30 scans copied into two stores: at MA accuracy 0.95, then at 0.3."""
    sb = sandbox_factory(scans=SCANS, files_per_scan=1, processing_delay=0.2, ma_accuracy=0.95, seed=15)
    folder = tmp_path_factory.mktemp("compare")
    ids = list(sb.info["source_scan_ids"])[:SCANS]
    analysis = {"enabled": True, "wait_for_processing": "2m"}
    jobs = {}
    for name, accuracy in (("release-a", 0.95), ("release-b", 0.3)):
        sb.configure(ma_accuracy=accuracy)
        jobs[name] = write_copy_job(
            folder, sb, store=sb.new_target_store(), scan_ids=ids, name=name, analysis=analysis
        )
        assert run(jobs[name]) == ExitCode.OK
    expected = {
        name: keyed(expected_rows(sb, sorted(read_mapping(job).items()))) for name, job in jobs.items()
    }
    return {"sb": sb, "folder": folder, "jobs": jobs, "expected": expected}


def compare_job(folder: Path, name: str, compare: dict[str, Any]) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "mode": "compare", "compare": compare}), encoding="utf-8")
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_compare_classes_match_both_targets_databases(twice: dict[str, Any]) -> None:
    folder, jobs = twice["folder"], twice["jobs"]
    job = compare_job(folder, "a-vs-b", {"baseline": jobs["release-a"].name, "candidate": "out-release-b"})
    assert run(job) == ExitCode.OK
    rows = read_rows(folder / "results" / "a-vs-b" / "compare.csv")

    base, cand = twice["expected"]["release-a"], twice["expected"]["release-b"]
    wanted = [(key[0], expected_class(base.get(key), cand.get(key))) for key in {**base, **cand}]
    assert per_scan([(r["source_scan_id"], r["class"]) for r in rows]) == per_scan(wanted)
    assert {int(r["source_scan_id"]) for r in rows} == {int(s) for s, _ in wanted}
    # each side's comments are what that target's database says
    for side, expected in (("baseline", base), ("candidate", cand)):
        got = [(r["source_scan_id"], r[f"{side}_comment"]) for r in rows if r[f"{side}_comment"]]
        assert per_scan(got) == per_scan([(k[0], e.comment) for k, e in expected.items()])
    # the MA got worse between the two copies, and the compare says so
    classes = Counter(r["class"] for r in rows)
    assert classes["regressed"] > classes["improved"], classes
    # the mapping and POG % of each side, with their difference
    for r in rows:
        if r["baseline_comment"] and r["candidate_comment"]:
            changed = r["baseline_planogram_name"] != r["candidate_planogram_name"]
            assert r["pog_changed"] == str(changed), r
        if r["baseline_pog_pct"] and r["candidate_pog_pct"]:
            diff = float(r["candidate_pog_pct"]) - float(r["baseline_pog_pct"])
            assert float(r["pog_pct_difference"]) == pytest.approx(diff, abs=0.01)


def test_compare_workbook_summary_and_fills(twice: dict[str, Any]) -> None:
    folder, jobs = twice["folder"], twice["jobs"]
    job = compare_job(
        folder, "workbook", {"baseline": jobs["release-a"].name, "candidate": jobs["release-b"].name}
    )
    assert run(job) == ExitCode.OK
    out = folder / "results" / "workbook"
    rows = read_rows(out / "compare.csv")
    book = openpyxl.load_workbook(out / "compare.xlsx")
    sheet = book["Compare"]
    header = [c.value for c in sheet[1]]
    assert header == list(rows[0])
    fills = {"improved": "CCFFCC", "regressed": "FFCCCC"}
    at = header.index("class")
    for cells in sheet.iter_rows(min_row=2):
        kind = cells[at].value
        if kind in fills:
            assert cells[0].fill.fgColor.rgb.endswith(fills[kind])
    summary = {row[0]: row[1:] for row in book["Summary"].iter_rows(values_only=True) if row and row[0]}
    classes = Counter(r["class"] for r in rows)
    for kind in (
        "improved",
        "regressed",
        "unchanged",
        "only_in_baseline",
        "only_in_candidate",
        "not_comparable",
    ):
        assert summary[kind][0] == classes[kind]
    transitions = Counter(
        (r["baseline_comment"] or "(none)", r["candidate_comment"] or "(none)") for r in rows
    )
    (b, c), n = transitions.most_common(1)[0]
    listed = [row for row in book["Summary"].iter_rows(values_only=True) if row[:2] == (b, c)]
    assert listed and listed[0][2] == n


def test_compare_gate_names_the_limit_and_exits_6(
    twice: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, jobs = twice["folder"], twice["jobs"]
    sides = {"baseline": jobs["release-a"].name, "candidate": jobs["release-b"].name}
    base, cand = twice["expected"]["release-a"], twice["expected"]["release-b"]
    regressed = len(
        {k[0] for k in {**base, **cand} if expected_class(base.get(k), cand.get(k)) == "regressed"}
    )
    assert regressed > 0

    breached = compare_job(folder, "gated", {**sides, "gate": {"regressed": 0}})
    capsys.readouterr()
    assert run(breached, "--json") == ExitCode.GATE == 6
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    gate = next(e for e in events if e["event"] == "gate")
    assert gate["verdict"] == "breached" and gate["report"] == "compare"
    (limit,) = gate["limits"]
    assert limit == {
        "subject": "regressed",
        "limit": "0",
        "actual": str(regressed),
        "scans": regressed,
        "total": SCANS,
        "verdict": "breached",
        "excess_scans": regressed,
    }
    assert events[-1]["event"] == "run_finished" and events[-1]["exit_code"] == 6
    assert (folder / "results" / "gated" / "compare.xlsx").is_file()  # reported all the same

    passing = compare_job(folder, "gated", {**sides, "gate": {"regressed": regressed}})
    assert run(passing) == ExitCode.OK
    assert "gate passed (compare): regressed" in capsys.readouterr().out


def test_a_side_without_an_analysis_is_refused(
    twice: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = twice["folder"]
    (folder / "empty").mkdir(exist_ok=True)
    job = compare_job(folder, "nothing", {"baseline": "empty", "candidate": twice["jobs"]["release-b"].name})
    assert run(job) == ExitCode.INVALID
    assert "compare.baseline: there is no analysis at" in capsys.readouterr().err
    assert not (folder / "results" / "nothing" / "compare.csv").exists()


def test_plan_finds_both_analyses_without_the_platform(
    twice: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = twice["jobs"]
    job = compare_job(
        twice["folder"], "planned", {"baseline": jobs["release-a"].name, "candidate": "out-release-b"}
    )
    assert main(["plan", str(job)]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "ok   baseline" in out and "ok   candidate" in out and "(exit 0)" in out
    assert not (twice["folder"] / "results" / "planned").exists()  # a plan writes nothing

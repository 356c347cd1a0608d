"""Analysis acceptance (issue 5): a copy job's report against the rules applied to independent SQL."""

from __future__ import annotations

import csv
import itertools
import json
import math
import subprocess
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import psycopg
import pytest
import yaml

from scanjobs.cli import main
from scanjobs.errors import ExitCode
from scanjobs.platform.db import PlatformDB
from scanjobs.report.rules import Comment
from scanjobs.sandbox import Sandbox
from scanjobs.sandboxjobs import write_sandbox_instances

RULE_COMMENTS = (
    "Wrong POG Name Mapping",
    "Same POG Name but Different Section",
    "Target Has Additional Section (Source Does Not)",
    "Target Has Higher POG% Than Source",
    "No Issues",
)
# Compared per side in the analysis: (CSV column suffix, kind) -> how a CSV cell is read back.
FIELDS = {
    "store_planogram_id": "int",
    "planogram_name": "text",
    "section_id": "int",
    "section_name": "text",
    "is_additional_section": "bool",
    "pre_pog_pct": "float",
    "post_pog_pct": "float",
    "pre_osa_pct": "float",
    "post_osa_pct": "float",
    "ok": "int",
    "wandering": "int",
    "oos": "int",
    "hole": "int",
}
NULLABLE_NUMBERS = [f for f, kind in FIELDS.items() if kind in ("int", "float")]

# One row per active compliance report of the scan's active realogram (a recalculated scan keeps
# its older reports, inactive). The planogram comes from the store POG; every per-report value is
# a scalar subquery so nothing can multiply the rows.
REPORTS_SQL = """
SELECT s.id AS scan_id, r.id AS report_id, r.store_planogram_id,
       (SELECT p.name FROM planograms_implementation_planogramstore ps
          JOIN planograms_implementation_planogram p ON p.id = ps.planogram_id
         WHERE ps.id = r.store_planogram_id) AS planogram_name,
       r.section_id, r.section_name,
       EXISTS (SELECT 1 FROM planograms_implementation_planogramsectionproduct sp
                WHERE sp.section_id = r.section_id
                  AND (sp.action ILIKE '%%additional%%' OR sp.merch_method ILIKE '%%additional%%'))
           AS is_additional_section,
       c.pre_compliance AS pre_pog_pct, c.post_compliance AS post_pog_pct,
       c.pre_osa AS pre_osa_pct, c.post_osa AS post_osa_pct,
       (r.compliance_rates ->> 'correct')::int AS ok, (r.compliance_rates ->> 'wandering')::int AS wandering,
       (r.compliance_rates ->> 'missing')::int AS oos, (r.compliance_rates ->> 'empty')::int AS hole
FROM realograms_implementation_scan s
JOIN planograms_compliance_planogramcompliancereport r
  ON r.realogram_id = s.active_realogram_id AND r.is_last_active
LEFT JOIN planograms_compliance_storeplanogramcompliance c
       ON c.store_planogram_id = r.store_planogram_id AND c.date = r.scan_created_date::date
WHERE s.id = ANY(%s)
ORDER BY s.id, r.id
"""
STATUS_SQL = "SELECT id, status FROM realograms_implementation_scan WHERE id = ANY(%s)"
# The platform's statuses (its client's list); finished ones end processing, for good.
STATUSES = {"action created", "in progress", "done", "error", "interrupted"}
FAILED = {"error", "interrupted"}
# The workbook's sheets but the Job's (its job name and times differ from run to run), and styles.
SHEETS_WITHOUT_THE_JOB = ("xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml", "xl/styles.xml")
# Scans whose active realogram also holds reports of an older calculation.
RECALCULATED_SQL = """
SELECT DISTINCT s.id FROM realograms_implementation_scan s
JOIN planograms_compliance_planogramcompliancereport r ON r.realogram_id = s.active_realogram_id
WHERE s.id = ANY(%s) AND NOT r.is_last_active
"""
BAYS_SQL = """
SELECT s.id, (SELECT count(*) FROM realograms_implementation_realogrambay b
               WHERE b.realogram_id = s.active_realogram_id)
FROM realograms_implementation_scan s WHERE s.id = ANY(%s)
"""


# -- the job files -------------------------------------------------------------------------------


def write_job(folder: Path, sb: Sandbox, name: str, body: dict[str, Any]) -> Path:
    write_sandbox_instances(sb.info, folder)
    job = {
        "version": 1,
        "source": "sandbox-source",
        "name": name,
        "retry": {
            "attempts": 6,
            "backoff": {"initial": 0.05, "max": 0.5},
            "timeout": {"connect": 5, "read": 10},
        },
        **body,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    return path


def copy_job(folder: Path, sb: Sandbox, name: str, store: int, ids: list[int], wait: str) -> Path:
    return write_job(
        folder,
        sb,
        name,
        {
            "mode": "copy",
            "target": {"instance": "sandbox-target", "store": store},
            "scans": {"ids": ids},
            "copy": {"strategy": "auto", "captured_at": "now"},
            "batch": {"size": 10, "workers": {"download": 20, "upload": 20, "create": 10}},
            "analysis": {"enabled": True, "wait_for_processing": wait},
            "output": f"out-{name}",
        },
    )


def analyze_job(folder: Path, sb: Sandbox, name: str, scans: dict[str, str]) -> Path:
    return write_job(
        folder,
        sb,
        name,
        {
            "mode": "analyze",
            "target": {"instance": "sandbox-target"},
            "scans": scans,
            "analysis": {"wait_for_processing": "1m"},
            "output": f"out-{name}",
        },
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def read_pairs(path: Path) -> list[tuple[int, int | None]]:
    return [
        (int(r["Source_Scan_ID"]), int(r["Target_Scan_ID"]) if r["Target_Scan_ID"] else None)
        for r in read_csv(path)
    ]


# -- the independent analysis --------------------------------------------------------------------


def fetch_reports(sb: Sandbox, instance: str, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    with psycopg.connect(**sb.db(instance), row_factory=psycopg.rows.dict_row) as conn:
        for row in conn.execute(REPORTS_SQL, (ids,)).fetchall():
            out[row["scan_id"]].append(row)
    return out


def fetch_statuses(sb: Sandbox, ids: list[int]) -> dict[int, str]:
    with psycopg.connect(**sb.db("target")) as conn:
        return dict(conn.execute(STATUS_SQL, (ids,)).fetchall())


def rule(source: dict[str, Any], target: dict[str, Any]) -> str:
    """docs/platform.md's rules table, first match wins; `!=` on None makes two NULL names equal."""
    if source["planogram_name"] != target["planogram_name"]:
        return "Wrong POG Name Mapping"
    if source["section_name"] != target["section_name"]:
        return "Same POG Name but Different Section"
    if target["is_additional_section"] and not source["is_additional_section"]:
        return "Target Has Additional Section (Source Does Not)"
    s_pre, t_pre = source["pre_pog_pct"], target["pre_pog_pct"]
    if s_pre is not None and t_pre is not None and t_pre > s_pre:
        return "Target Has Higher POG% Than Source"
    return "No Issues"


def link(src: list[dict[str, Any]], tgt: list[dict[str, Any]]) -> list[tuple[int | None, int | None]]:
    """Source and target report indexes: same section name first, the rest by order."""
    by_name: list[tuple[int | None, int | None]] = []
    taken: set[int] = set()
    for i, s in enumerate(src):
        j = next(
            (j for j, t in enumerate(tgt) if j not in taken and t["section_name"] == s["section_name"]), None
        )
        if j is not None:
            taken.add(j)
            by_name.append((i, j))
    rest_s = [i for i in range(len(src)) if i not in {i for i, _ in by_name}]
    rest_t = [j for j in range(len(tgt)) if j not in taken]
    links = by_name + list(itertools.zip_longest(rest_s, rest_t))
    return sorted(links, key=lambda x: tuple(math.inf if n is None else n for n in x))


@dataclass
class Expected:
    source_scan_id: int
    target_scan_id: int | None
    source: dict[str, Any] | None
    target: dict[str, Any] | None
    comment: str


def existing(sb: Sandbox, instance: str, ids: list[int]) -> set[int]:
    with psycopg.connect(**sb.db(instance)) as conn:
        rows = conn.execute("SELECT id FROM realograms_implementation_scan WHERE id = ANY(%s)", (ids,))
        return {r[0] for r in rows.fetchall()}


def expected_rows(sb: Sandbox, pairs: list[tuple[int, int | None]]) -> list[Expected]:
    src_reports = fetch_reports(sb, "source", [s for s, _ in pairs])
    target_ids = [t for _, t in pairs if t is not None]
    statuses = fetch_statuses(sb, target_ids)
    # a done scan's reports are final, none included; a failed scan's are never read
    processed = {t for t, status in statuses.items() if status == "done"}
    tgt_reports = fetch_reports(sb, "target", sorted(processed))
    sources, targets = existing(sb, "source", [s for s, _ in pairs]), existing(sb, "target", target_ids)
    rows: list[Expected] = []
    for s_id, t_id in pairs:
        src = src_reports.get(s_id, [])
        if s_id not in sources:
            rows.append(Expected(s_id, t_id, None, None, "Source Scan Not Found"))
            continue
        if t_id is None or t_id not in processed:
            if t_id is None:
                comment = "Not Copied"
            elif t_id not in targets:
                comment = "Target Scan Not Found"
            elif statuses[t_id] in FAILED:
                comment = f"Target Processing Failed ({statuses[t_id]})"
            else:
                comment = "Target Not Processed"
            alone: list[dict[str, Any] | None] = [*src] or [None]
            rows += [Expected(s_id, t_id, s, None, comment) for s in alone]
            continue
        tgt = tgt_reports[t_id]
        if not src and not tgt:
            rows.append(Expected(s_id, t_id, None, None, "No Report on Either Side"))
        for i, j in link(src, tgt):
            s, t = (None if i is None else src[i]), (None if j is None else tgt[j])
            comment = (
                "Target Report Missing" if t is None else "Source Report Missing" if s is None else rule(s, t)
            )
            rows.append(Expected(s_id, t_id, s, t, comment))
    return rows


def cell(text: str, kind: str) -> Any:
    """A CSV cell read back; an empty cell is NULL (the report must never write 0 for NULL)."""
    if text == "":
        return None
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "bool":
        return {"True": True, "False": False}[text]
    return text


def assert_rows_match(csv_rows: list[dict[str, str]], expected: list[Expected]) -> None:
    assert len(csv_rows) == len(expected)
    for n, (got, exp) in enumerate(zip(csv_rows, expected, strict=True)):
        where = f"row {n + 2} ({exp.source_scan_id} -> {exp.target_scan_id})"
        assert cell(got["source_scan_id"], "int") == exp.source_scan_id, where
        assert cell(got["target_scan_id"], "int") == exp.target_scan_id, where
        assert got["comment"] == exp.comment, where
        for side, report in (("source", exp.source), ("target", exp.target)):
            for field, kind in FIELDS.items():
                value = None if report is None else report[field]
                if kind == "float" and value is not None:
                    value = float(value)
                assert cell(got[f"{side}_{field}"], kind) == value, f"{where}: {side}_{field}"


# -- the shared copy job ------------------------------------------------------------------------


@dataclass
class CopyRun:
    folder: Path
    job: Path
    out: Path
    pairs: list[tuple[int, int | None]]
    rows: list[dict[str, str]]


@pytest.fixture(scope="module")
def copied(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> CopyRun:
    """All 40 source scans copied into a fresh store, analysed by the copy job itself."""
    folder = tmp_path_factory.mktemp("analysis")
    ids = sandbox.info["source_scan_ids"][:40]
    job = copy_job(folder, sandbox, "copy", sandbox.new_target_store(), ids, "2m")
    assert main(["run", str(job)]) == ExitCode.OK
    out = folder / "out-copy"
    pairs = read_pairs(out / "scan_mapping.csv")
    assert [s for s, _ in pairs] == ids and all(t is not None for _, t in pairs)
    return CopyRun(folder, job, out, pairs, read_csv(out / "analysis_with_comments.csv"))


def test_every_row_follows_the_rules_on_independent_data(sandbox: Sandbox, copied: CopyRun) -> None:
    expected = expected_rows(sandbox, copied.pairs)
    assert_rows_match(copied.rows, expected)
    counts = Counter(r["comment"] for r in copied.rows)
    print("comments:", dict(counts))
    assert set(RULE_COMMENTS) <= set(counts), counts


def test_only_active_reports_are_compared(sandbox: Sandbox, copied: CopyRun) -> None:
    """issue 13, point 11: a recalculated scan keeps its older reports, inactive; the analysis
    read them too, as reports the scan did not have. Both sides hold recalculated scans here, and
    the rows are those of the active reports (the independent SQL above reads only those)."""
    for instance, ids in (
        ("source", [s for s, _ in copied.pairs]),
        ("target", [t for _, t in copied.pairs if t is not None]),
    ):
        with psycopg.connect(**sandbox.db(instance)) as conn:
            recalculated = {r[0] for r in conn.execute(RECALCULATED_SQL, (ids,)).fetchall()}
        assert recalculated, f"no recalculated {instance} scan: the test would show nothing"
    assert_rows_match(copied.rows, expected_rows(sandbox, copied.pairs))
    details = read_csv(copied.out / "source_scandetails.csv")
    reports = fetch_reports(sandbox, "source", [s for s, _ in copied.pairs])
    assert {int(r["report_id"]) for r in details if r["report_id"]} == {
        r["report_id"] for rows in reports.values() for r in rows
    }
    inst = sandbox.info["instances"]["source"]["db"]
    with PlatformDB(inst["host"], inst["port"], inst["dbname"], inst["user"], inst["password"]) as db:
        counts = {i: s.report_count for i, s in db.processing_status(list(reports)).items()}
    assert counts == {i: len(rows) for i, rows in reports.items()}


def test_a_report_table_without_is_last_active_is_read_whole(sandbox: Sandbox) -> None:
    """issue 13, point 11: `is_last_active` is assumed, not confirmed: where the report table has
    no such column, the queries still run and every report counts. A temporary table of that
    shape (without the column) stands in for the platform's in this session."""
    report = "planograms_compliance_planogramcompliancereport"
    ids = sandbox.info["source_scan_ids"]
    sql_dir = resources.files("scanjobs.platform") / "sql"
    with psycopg.connect(**sandbox.db("source"), row_factory=psycopg.rows.dict_row) as conn:
        columns = [
            r["column_name"]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                " AND column_name <> 'is_last_active' ORDER BY ordinal_position",
                (report,),
            ).fetchall()
        ]
        count = (
            f"SELECT s.id, count(r.id) AS n FROM realograms_implementation_scan s LEFT JOIN {report} r"
            " ON r.realogram_id = s.active_realogram_id AND ({}) WHERE s.id = ANY(%s) GROUP BY s.id"
        )
        every = {r["id"]: r["n"] for r in conn.execute(count.format("true"), (ids,)).fetchall()}
        active = {r["id"]: r["n"] for r in conn.execute(count.format("r.is_last_active"), (ids,)).fetchall()}
        assert every != active  # the sandbox holds inactive reports, which now count
        conn.execute(f"CREATE TEMP TABLE {report} AS SELECT {', '.join(columns)} FROM public.{report}")
        status = conn.execute((sql_dir / "processing_status.sql").read_text(), {"ids": ids}).fetchall()
        details = conn.execute((sql_dir / "scan_details.sql").read_text(), {"ids": ids}).fetchall()
        names = conn.execute((sql_dir / "download_info.sql").read_text(), {"ids": ids}).fetchall()
    assert {r["id"]: r["report_count"] for r in status} == every
    assert Counter(r["scan_id"] for r in details if r["report_id"] is not None) == {
        i: n for i, n in every.items() if n
    }
    assert len(names) == len(ids)


def test_failed_and_reportless_targets_get_their_own_comments(sandbox: Sandbox, copied: CopyRun) -> None:
    """issue 13, point 2: the sandbox ends some scans in `error` and some `done` without a report
    (the same scans for a seed). The copy's wait ended with them (every copy is finished), and
    their rows say so: "Target Processing Failed (error)", "Target Report Missing"."""
    targets = [t for _, t in copied.pairs if t is not None]
    statuses = fetch_statuses(sandbox, targets)
    assert set(statuses.values()) <= STATUSES - {"action created", "in progress"}, statuses
    reports = fetch_reports(sandbox, "target", targets)
    failed = {t for t, status in statuses.items() if status == "error"}
    reportless = {t for t, status in statuses.items() if status == "done" and not reports[t]}
    assert failed and reportless, statuses
    by_target: dict[int, set[str]] = {}
    for row in copied.rows:
        by_target.setdefault(int(row["target_scan_id"]), set()).add(row["comment"])
    assert all(by_target[t] == {"Target Processing Failed (error)"} for t in failed), by_target
    assert all(by_target[t] <= {"Target Report Missing", "No Report on Either Side"} for t in reportless)
    assert {"Target Report Missing"} <= set().union(*(by_target[t] for t in reportless))
    assert not [r for r in copied.rows if r["comment"] == "Target Not Processed"]


def test_a_failed_target_ends_the_wait_at_once(sandbox: Sandbox, copied: CopyRun) -> None:
    """issue 13, point 2: a target scan that ended in `error` kept the wait going for the whole
    `wait_for_processing` (an hour here). Finished is done, error or interrupted: one look at
    the statuses ends the wait."""
    statuses = fetch_statuses(sandbox, [t for _, t in copied.pairs if t is not None])
    pairs = [(s, t) for s, t in copied.pairs if t is not None and statuses[t] == "error"]
    assert pairs
    folder = copied.folder / "failed-targets"
    folder.mkdir()
    with open(folder / "pairs.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Source_Scan_ID", "Target_Scan_ID"])
        writer.writerows(pairs)
    job = analyze_job(folder, sandbox, "analyze", {"pairs": "pairs.csv"})
    spec = yaml.safe_load(job.read_text())
    spec["analysis"]["wait_for_processing"] = "1h"
    job.write_text(yaml.safe_dump(spec))
    done = subprocess.run(
        [sys.executable, "-m", "scanjobs", "run", str(job), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [e["processed"] for e in events if e["event"] == "waiting"] == [len(pairs)]
    rows = read_csv(folder / "out-analyze" / "analysis_with_comments.csv")
    assert {r["comment"] for r in rows} == {"Target Processing Failed (error)"}
    assert_rows_match(rows, expected_rows(sandbox, pairs))


def test_excel_fills_header_filter_and_summary(copied: CopyRun) -> None:
    wb = openpyxl.load_workbook(copied.out / "analysis_with_comments.xlsx")
    assert wb.sheetnames[:2] == ["Analysis", "Summary"]
    ws = wb["Analysis"]
    header = [c.value for c in ws[1]]
    assert header == list(copied.rows[0])
    assert all(c.font.bold for c in ws[1])
    assert ws.freeze_panes == "C2"  # the header row and both scan id columns
    assert ws.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(len(header))}{len(copied.rows) + 1}"
    assert ws.max_row == len(copied.rows) + 1
    comment_col = header.index("comment")
    for row, expected in zip(ws.iter_rows(min_row=2), copied.rows, strict=True):
        assert row[comment_col].value == expected["comment"]
        fill = Comment.from_text(expected["comment"]).fill
        assert {(c.fill.fill_type, str(c.fill.fgColor.rgb)[-6:].upper()) for c in row} == {("solid", fill)}
        for c, name in zip(row, header, strict=True):
            assert (c.value is None) == (expected[name] == ""), f"{c.coordinate} {name}"

    summary = wb["Summary"]
    table: dict[str, int] = {}
    for text, count in summary.iter_rows(min_row=2, max_col=2, values_only=True):
        if text == "Total":
            break
        table[str(text)] = int(str(count))
    csv_counts = Counter(r["comment"] for r in copied.rows)
    assert table == {c.text: csv_counts.get(c.text, 0) for c in Comment}


def test_null_stays_null(sandbox: Sandbox, copied: CopyRun) -> None:
    """Where the database holds NULL the CSV cell is empty and the Excel cell is empty, never 0."""
    expected = expected_rows(sandbox, copied.pairs)
    ws = openpyxl.load_workbook(copied.out / "analysis_with_comments.xlsx")["Analysis"]
    header = [c.value for c in ws[1]]
    nulls = 0
    for n, (exp, got) in enumerate(zip(expected, copied.rows, strict=True)):
        for side, report in (("source", exp.source), ("target", exp.target)):
            for field in NULLABLE_NUMBERS:
                if report is not None and report[field] is None:
                    column = f"{side}_{field}"
                    assert got[column] == ""
                    assert ws.cell(row=n + 2, column=header.index(column) + 1).value is None
                    nulls += 1
    assert nulls > 0, "the seeded data should hold some NULL counts or OSA values"
    details = read_csv(copied.out / "source_scandetails.csv")
    assert all(r["ok"] not in ("0.0", "nan", "NaN") for r in details)


def test_bays_are_counted_not_joined(sandbox: Sandbox, copied: CopyRun) -> None:
    targets = [t for _, t in copied.pairs if t is not None]
    statuses = fetch_statuses(sandbox, targets)
    for instance, ids in (
        ("source", [s for s, _ in copied.pairs]),
        ("target", [t for t in targets if statuses[t] == "done"]),  # a failed scan's are not read
    ):
        with psycopg.connect(**sandbox.db(instance)) as conn:
            bays = dict(conn.execute(BAYS_SQL, (ids,)).fetchall())
        reports = fetch_reports(sandbox, instance, ids)
        details = read_csv(copied.out / f"{instance}_scandetails.csv")
        per_scan = Counter(int(r["scan_id"]) for r in details)
        assert per_scan == {i: max(1, len(reports[i])) for i in ids}
        assert {int(r["scan_id"]): int(r["bays"]) for r in details} == bays
        assert max(bays.values()) > 1  # several bays occurred, and did not multiply anything
    # the analysis has one row per linked report pair: as many rows as the larger side per pair
    target_reports = fetch_reports(sandbox, "target", [t for _, t in copied.pairs if t is not None])
    source_reports = fetch_reports(sandbox, "source", [s for s, _ in copied.pairs])
    per_pair = Counter(int(r["source_scan_id"]) for r in copied.rows)
    for s, t in copied.pairs:
        assert t is not None
        assert per_pair[s] <= len(source_reports[s]) + len(target_reports[t])
        assert per_pair[s] >= max(len(source_reports[s]), len(target_reports[t]))


def test_analyze_on_pairs_csv_and_from_job_equal_the_copy_analysis(sandbox: Sandbox, copied: CopyRun) -> None:
    pairs_job = analyze_job(copied.folder, sandbox, "by-pairs", {"pairs": "out-copy/scan_mapping.csv"})
    assert main(["run", str(pairs_job)]) == ExitCode.OK
    assert read_csv(copied.folder / "out-by-pairs" / "analysis_with_comments.csv") == copied.rows

    from_job = analyze_job(copied.folder, sandbox, "from-job", {"from_job": copied.job.name})
    assert main(["run", str(from_job)]) == ExitCode.OK
    assert read_csv(copied.folder / "out-from-job" / "analysis_with_comments.csv") == copied.rows


def test_scan_not_copied_gets_its_own_rows(sandbox: Sandbox, copied: CopyRun) -> None:
    """An empty target in the pairs CSV: that scan's source rows say "Not Copied", borrowing nothing."""
    pairs = copied.pairs[:6]
    blanked = pairs[2][0]
    folder = copied.folder / "not-copied"
    folder.mkdir()
    with open(folder / "pairs.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Source_Scan_ID", "Target_Scan_ID"])
        writer.writerows((s, "" if s == blanked else t) for s, t in pairs)
    job = analyze_job(folder, sandbox, "analyze", {"pairs": "pairs.csv"})
    assert main(["run", str(job)]) == ExitCode.OK
    rows = read_csv(folder / "out-analyze" / "analysis_with_comments.csv")
    mine = [r for r in rows if r["source_scan_id"] == str(blanked)]
    assert mine and {r["comment"] for r in mine} == {"Not Copied"}
    assert {r["target_scan_id"] for r in mine} == {""}
    assert all(r[f"target_{f}"] == "" for r in mine for f in FIELDS)
    # every other pair's rows are exactly the copy job's
    others = {s for s, _ in pairs} - {blanked}
    assert [r for r in rows if int(r["source_scan_id"]) in others] == [
        r for r in copied.rows if int(r["source_scan_id"]) in others
    ]
    assert_rows_match(rows, expected_rows(sandbox, [(s, None if s == blanked else t) for s, t in pairs]))


def test_unprocessed_target_and_missing_source_scan(sandbox: Sandbox, tmp_path: Path) -> None:
    """Processing slower than the wait: "Target Not Processed" rows; an id the source lacks:
    "Source Scan Not Found" (issue 12, point 18; it was "Not Copied")."""
    ids = sandbox.info["source_scan_ids"][:3]
    missing = 9_999_999
    store = sandbox.new_target_store()
    before = sandbox.configure()["processing_delay"]
    sandbox.configure(processing_delay=600)
    try:
        job = copy_job(tmp_path, sandbox, "slow", store, [*ids, missing], "2s")
        assert main(["run", str(job)]) == ExitCode.PARTIAL  # the missing id is a failed scan
    finally:
        sandbox.configure(processing_delay=before)
    out = tmp_path / "out-slow"
    pairs = read_pairs(out / "scan_mapping.csv")
    assert [s for s, _ in pairs] == ids
    rows = read_csv(out / "analysis_with_comments.csv")
    expected = expected_rows(sandbox, [*pairs, (missing, None)])
    assert {e.comment for e in expected} == {"Target Not Processed", "Source Scan Not Found"}
    assert_rows_match(rows, expected)
    assert rows[-1]["source_scan_id"] == str(missing) and rows[-1]["comment"] == "Source Scan Not Found"
    assert all(r[f"target_{f}"] == "" for r in rows for f in FIELDS)
    assert read_csv(out / "target_scandetails.csv") == []  # unprocessed reports are never read


def test_all_five_comments_occur(copied: CopyRun) -> None:
    assert set(RULE_COMMENTS) <= {r["comment"] for r in copied.rows}


def test_unknown_ids_are_said_at_once(sandbox: Sandbox, copied: CopyRun) -> None:
    """Issue 12, point 18: a target id that does not exist waited out the whole
    wait_for_processing as "Target Not Processed"; a source id that does not exist became
    "Source Report Missing". Each is said as such, without waiting."""
    (s1, t1), (s2, _), (_, t3) = copied.pairs[:3]
    unknown_target, unknown_source = 99_999_991, 99_999_992
    folder = copied.folder / "unknown-ids"
    folder.mkdir()
    with open(folder / "pairs.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Source_Scan_ID", "Target_Scan_ID"])
        writer.writerows([(s1, t1), (s2, unknown_target), (unknown_source, t3)])
    job = analyze_job(folder, sandbox, "analyze", {"pairs": "pairs.csv"})
    spec = yaml.safe_load(job.read_text())
    spec["analysis"]["wait_for_processing"] = "1h"  # an unknown id must not be waited for
    job.write_text(yaml.safe_dump(spec))
    done = subprocess.run(
        [sys.executable, "-m", "scanjobs", "run", str(job)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    assert f"do not exist on sandbox-target: {unknown_target}" in done.stdout, done.stdout
    assert f"do not exist on sandbox-source: {unknown_source}" in done.stdout, done.stdout
    rows = read_csv(folder / "out-analyze" / "analysis_with_comments.csv")
    by_source = {int(r["source_scan_id"]): r["comment"] for r in rows}
    assert by_source[s2] == "Target Scan Not Found"
    assert by_source[unknown_source] == "Source Scan Not Found"
    assert [r for r in rows if r["source_scan_id"] == str(s1)] == [
        r for r in copied.rows if r["source_scan_id"] == str(s1)
    ]


# -- the report's day (issue 13, point 12) --------------------------------------------------------

REPORT_DAY_SQL = """
SELECT r.id, c.pre_compliance
FROM planograms_compliance_planogramcompliancereport r
LEFT JOIN planograms_compliance_storeplanogramcompliance c
       ON c.store_planogram_id = r.store_planogram_id AND c.date = r.scan_created_date
WHERE r.realogram_id IN (SELECT active_realogram_id FROM realograms_implementation_scan WHERE id = ANY(%s))
  AND r.is_last_active
"""


def test_the_reports_day_is_a_date_whatever_the_sessions_time_zone(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 13, point 12: the platform's `scan_created_date` is a date, compared with the daily
    compliance row's date. The sandbox held a timestamp, so the day a report joined to depended on
    the reading session's time zone: a session 14 hours ahead of UTC read the next day's POG %
    for a scan made after 10:00 UTC."""
    ids = sandbox.info["source_scan_ids"]
    with psycopg.connect(**sandbox.db("source")) as conn:
        kind = conn.execute(
            "SELECT data_type FROM information_schema.columns"
            " WHERE table_name = 'planograms_compliance_planogramcompliancereport'"
            " AND column_name = 'scan_created_date'"
        ).fetchone()
        expected = dict(conn.execute(REPORT_DAY_SQL, (ids,)).fetchall())
    monkeypatch.setenv("PGTZ", "Pacific/Kiritimati")  # UTC+14: libpq sets the session's TimeZone
    inst = sandbox.info["instances"]["source"]["db"]
    with PlatformDB(inst["host"], inst["port"], inst["dbname"], inst["user"], inst["password"]) as db:
        details = db.scan_details(ids)
    got = {
        int(r.report_id): (None if pd.isna(r.pre_pog_pct) else float(r.pre_pog_pct))
        for r in details.itertuples()
        if not pd.isna(r.report_id)
    }
    assert got == expected
    assert kind == ("date",)


def test_an_analysis_in_batches_writes_the_reports_of_one_in_one_go(
    sandbox: Sandbox, copied: CopyRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100k pairs are read ANALYSIS_BATCH and compared RULES_BATCH at a time (their frames at
    once took a hundred megabytes): batches of 7 pairs compared 3 at a time, with a source scan
    in two batches and a pair whose target is not copied, give the same CSVs as one batch."""
    import scanjobs.modes.analyze.run as analyze_run

    pairs = [*copied.pairs, (copied.pairs[0][0], None), copied.pairs[3]]
    pairs_csv = tmp_path / "pairs.csv"
    pairs_csv.write_text(
        "Source_Scan_ID,Target_Scan_ID\n" + "".join(f"{s},{'' if t is None else t}\n" for s, t in pairs)
    )
    outputs = {}
    for name, batch, rules in (("whole", 10_000, 10_000), ("batched", 7, 3)):
        monkeypatch.setattr(analyze_run, "ANALYSIS_BATCH", batch)
        monkeypatch.setattr(analyze_run, "RULES_BATCH", rules)
        job = analyze_job(tmp_path, sandbox, name, {"pairs": str(pairs_csv)})
        assert main(["run", str(job)]) == ExitCode.OK
        out = tmp_path / f"out-{name}"
        outputs[name] = {
            csv_name: (out / csv_name).read_bytes()
            for csv_name in ("analysis_with_comments.csv", "source_scandetails.csv", "target_scandetails.csv")
        }
        with zipfile.ZipFile(out / "analysis_with_comments.xlsx") as xlsx:  # Analysis, Summary
            outputs[name].update({part: xlsx.read(part) for part in SHEETS_WITHOUT_THE_JOB})
    assert outputs["batched"] == outputs["whole"]

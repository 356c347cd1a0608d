"""Benchmark: a copy job that finished 100,000 scans, and what a user runs on it afterwards.

Builds, against a sandbox on loopback:
- in both sandbox databases (filled by SQL as the superuser, in bulk): N source scans and N
  target scans in the target store, each done, with a realogram, bays, one or two active
  compliance reports and a MA log; most target reports name the source's planogram and
  section, some do not, so the analysis sees a realistic mix of comments;
- the job's state through `scanjobs.state.StateStore`: N scans done (each with its target id)
  and 3 N files uploaded, as a copy that ran to the end records them.

Then times whole processes (`python -m scanjobs ...`), as a user would run them (with a bytecode
cache, as an installed scanjobs has: see `children.py`), with each one's peak RSS:
- the first `run` after the copy: nothing to copy, the mapping CSV, then the analysis of the N
  pairs (wait for processing, both databases' details, CSVs and the Excel report);
- a rerun of the finished job (the analysis is up to date);
- `status`, `status --json`, `plan`;
and, in this process, the read of the state and the writing of scan_mapping.csv.

Prints each figure with its target and ok/MISSED; exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

# Run as a plain script from a checkout: make the repository and the test helpers importable.
ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from children import child_env  # noqa: E402
from copy_support import write_copy_job  # noqa: E402

from scanjobs.jobfile import load_job  # noqa: E402
from scanjobs.modes.copy.run import MAPPING_CSV  # noqa: E402
from scanjobs.modes.resources import write_csv  # noqa: E402
from scanjobs.sandbox import Sandbox  # noqa: E402
from scanjobs.state import ItemKind, StateStore, Status  # noqa: E402

FILES_PER_SCAN = 3
SOURCE_BASE = 10_000_000  # far above the seeded ids of every table on both sides
TARGET_BASE = 20_000_000
MISMAPPED = 10  # one target scan in MISMAPPED is mapped to another planogram or section
MB = 1024 * 1024

# figure -> (target, unit); figures without a target are printed only
TARGETS: dict[str, tuple[float, str]] = {
    "rerun": (2.0, "s"),
    "status": (1.0, "s"),
    "status --json": (1.0, "s"),
    "analysis": (60.0, "s"),
    "peak RSS": (300.0, "MB"),
}


@dataclass
class Timed:
    """One whole process: wall time, peak RSS, exit code, and when each --json event arrived."""

    seconds: float
    rss_mb: float
    code: int
    stdout: str
    events: list[tuple[float, dict[str, Any]]]


def _watch_peak(proc: subprocess.Popen[str], peak: list[int]) -> None:
    """The process's own peak RSS (VmHWM, kB) until it exits. Not wait4's ru_maxrss: a child
    inherits its parent's high-water mark through fork, and this process holds ~200 MB."""
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak[0] = max(peak[0], int(line.split()[1]))
        time.sleep(0.01)


def run_scanjobs(args: Sequence[str], cwd: Path, env: dict[str, str]) -> Timed:
    """`python -m scanjobs ARGS`; its own peak RSS, events timed as they arrive."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanjobs", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    peak = [0]
    watcher = threading.Thread(target=_watch_peak, args=(proc, peak), daemon=True)
    watcher.start()
    events: list[tuple[float, dict[str, Any]]] = []
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                events.append((time.monotonic() - started, json.loads(line)))
    stderr = proc.stderr.read()
    proc.wait()
    seconds = time.monotonic() - started
    watcher.join()
    if proc.returncode not in (0,):
        sys.stderr.write(
            f"scanjobs {' '.join(args)} exited {proc.returncode}:\n{''.join(lines)[-3000:]}{stderr[-3000:]}\n"
        )
    return Timed(seconds, peak[0] / 1024, proc.returncode, "".join(lines), events)


# -- the databases -------------------------------------------------------------------------------

TEMPLATE_SQL = """
SELECT ps.store_id, ps.id AS ps_id, p.id AS pog_id, p.name AS pog_name, sec.id AS section_id,
       sec.name AS section_name, p.category_id
FROM planograms_implementation_planogramstore AS ps
JOIN planograms_implementation_planogram AS p ON p.id = ps.planogram_id
JOIN planograms_implementation_planogramsection AS sec ON sec.planogram_id = p.id
{where}
ORDER BY ps.store_id, p.name, sec.position, sec.id
"""

# One statement per table, each taking whole columns as arrays (unnest): 100k rows in one go.
SCANS_SQL = """
INSERT INTO realograms_implementation_scan (id, store_id, created_at, updated_at, status,
    has_report, selected_category_id, active_realogram_id, provided_values,
    processing_start_time, processing_finish_time)
SELECT base + g, store, ts, ts, 'done', true, category, base + g,
       jsonb_build_object('_raw_data', jsonb_build_object('store', store, 'store_planogram', ps,
           'section_id', section, 'category_id', category, 'input_type', 'image')),
       ts + interval '20 seconds', ts + interval '80 seconds'
FROM (SELECT %(base)s::bigint AS base, g, store, ps, section, category,
             (current_date - (1 + g %% 10)::int) + time '10:00' AS ts
      FROM unnest(%(g)s::bigint[], %(store)s::bigint[], %(ps)s::bigint[], %(section)s::bigint[],
                  %(category)s::bigint[]) AS u(g, store, ps, section, category)) AS rows
"""
CHILDREN_SQL = [
    f"""INSERT INTO master_data_implementation_fileupload (id, file, original_filename, input_type,
           content_type, size, checksum, store_id)
       SELECT %(base)s + {FILES_PER_SCAN} * (s.id - %(base)s) + k,
              'uploads/' || s.id || '/' || k || '.jpg', 'IMG_' || k || '.jpg', 'image',
              'image/jpeg', 1000, md5(s.id || '/' || k), s.store_id
       FROM realograms_implementation_scan AS s, generate_series(0, {FILES_PER_SCAN - 1}) AS k
       WHERE s.id > %(base)s""",
    f"""INSERT INTO realograms_implementation_scanfile (id, scan_id, file_id, file_type)
       SELECT id, (id - %(base)s) / {FILES_PER_SCAN} + %(base)s, id, 'image'
       FROM master_data_implementation_fileupload WHERE id > %(base)s""",
    """INSERT INTO realograms_implementation_realogram (id, scan_id, created_at)
       SELECT id, id, created_at FROM realograms_implementation_scan WHERE id > %(base)s""",
    """INSERT INTO realograms_implementation_realogrambay (id, realogram_id, number)
       SELECT %(base)s + 2 * (id - %(base)s) + k, id, k + 1
       FROM realograms_implementation_scan, generate_series(0, 1) AS k WHERE id > %(base)s""",
    # the section each scan shows, and for one scan in three a second section of the same POG
    """INSERT INTO planograms_compliance_planogramcompliancereport (id, realogram_id,
           store_planogram_id, planogram_id, section_id, section_name, aisle_name,
           compliance_rate, facing_compliance_rate, sequence_compliance_rate,
           initial_pre_compliance, compliance_rates, scan_created_date, is_last_active)
       SELECT %(base)s + 2 * (s.id - %(base)s) + k, s.id, ps.id, ps.planogram_id, sec.id,
              sec.name, 'A' || (s.id %% 12), (s.id * 7 %% 100) / 100.0, 0.5, 0.5, 0.5,
              jsonb_build_object('osa', 60 + s.id %% 40, 'correct', 5 + s.id %% 75,
                  'wandering', s.id %% 9, 'missing', s.id %% 15, 'empty', s.id %% 6),
              s.created_at::date, true
       FROM realograms_implementation_scan AS s
       CROSS JOIN generate_series(0, 1) AS k
       JOIN planograms_implementation_planogramstore AS ps
           ON ps.id = (s.provided_values -> '_raw_data' ->> 'store_planogram')::bigint
       JOIN LATERAL (
           SELECT x.id, x.name FROM planograms_implementation_planogramsection AS x
           WHERE x.planogram_id = ps.planogram_id
           ORDER BY x.id = (s.provided_values -> '_raw_data' ->> 'section_id')::bigint DESC, x.id
           OFFSET k LIMIT 1
       ) AS sec ON true
       WHERE s.id > %(base)s AND (k = 0 OR s.id %% 3 = 0)""",
    """INSERT INTO planograms_compliance_majorityv2log (id, store_planogram_id, scan_created_date,
           data)
       SELECT id, (provided_values -> '_raw_data' ->> 'store_planogram')::bigint, created_at,
              jsonb_build_object(id::text, jsonb_build_object('map_by',
                  (ARRAY['barcode', 'majority', 'section_hint', 'price_tag'])[1 + id %% 4]))
       FROM realograms_implementation_scan WHERE id > %(base)s""",
]


def _superuser(sb: Sandbox, instance: str) -> psycopg.Connection[Any]:
    db = sb.db(instance)
    password = (sb.dir / "pg" / "superuser.pw").read_text().strip()
    return psycopg.connect(
        host=db["host"], port=db["port"], dbname=db["dbname"], user="postgres", password=password
    )


def _templates(conn: psycopg.Connection[Any], store: int | None) -> list[tuple[Any, ...]]:
    where = "" if store is None else f"WHERE ps.store_id = {int(store)}"
    return conn.execute(TEMPLATE_SQL.format(where=where)).fetchall()  # type: ignore[arg-type]


def fill_databases(sb: Sandbox, n: int, target_store: int) -> None:
    """N done scans with reports on each side; target scan g is the copy of source scan g."""
    with _superuser(sb, "source") as src, _superuser(sb, "target") as tgt:
        source_rows = _templates(src, None)
        target_rows = _templates(tgt, target_store)
        by_name = {(r[3], r[5]): r for r in target_rows}
        sides: dict[str, list[tuple[Any, ...]]] = {"source": [], "target": []}
        for g in range(1, n + 1):
            s = source_rows[g % len(source_rows)]
            t = by_name.get((s[3], s[5])) if g % MISMAPPED else None
            sides["source"].append(s)
            sides["target"].append(t or target_rows[g % len(target_rows)])
        for conn, base, rows in ((src, SOURCE_BASE, sides["source"]), (tgt, TARGET_BASE, sides["target"])):
            params = {
                "base": base,
                "g": list(range(1, n + 1)),
                "store": [r[0] for r in rows],
                "ps": [r[1] for r in rows],
                "section": [r[4] for r in rows],
                "category": [r[6] for r in rows],
            }
            conn.execute(SCANS_SQL, params)
            for statement in CHILDREN_SQL:
                conn.execute(statement, {"base": base})  # type: ignore[arg-type]
            conn.commit()
            conn.autocommit = True
            conn.execute("ANALYZE")


# -- the state ------------------------------------------------------------------------------------


def build_state(job_path: Path, n: int) -> float:
    """The state of a copy that finished all N scans, through StateStore; its size in MB."""
    job = load_job(job_path)
    store = StateStore.open(
        job.state_path, fingerprint=job.fingerprint(), fingerprint_fields=job.fingerprint_fields()
    )
    try:
        scans = [SOURCE_BASE + g for g in range(1, n + 1)]
        files = [(scan, scan * FILES_PER_SCAN + k) for scan in scans for k in range(FILES_PER_SCAN)]
        store.add_items(ItemKind.FILE, [(str(f), f) for _, f in files], step="upload", status=Status.DONE)
        store.add_items(ItemKind.SCAN, [(str(s), s) for s in scans], step="create", status=Status.DONE)
        with store.transaction() as c:
            c.executemany(
                "UPDATE items SET target_id=? WHERE kind=? AND key=?",
                [(f + 1, ItemKind.FILE.value, str(f)) for _, f in files],
            )
            c.executemany(
                "UPDATE items SET target_id=?, data=? WHERE kind=? AND key=?",
                [
                    (
                        TARGET_BASE + s - SOURCE_BASE,
                        json.dumps(
                            {"target_files": [s * FILES_PER_SCAN + k + 1 for k in range(FILES_PER_SCAN)]}
                        ),
                        ItemKind.SCAN.value,
                        str(s),
                    )
                    for s in scans
                ],
            )
    finally:
        store.close()  # the last connection to close folds the WAL into the file
    return job.state_path.stat().st_size / MB


def time_mapping_csv(job_path: Path, out: Path) -> tuple[float, float]:
    """(seconds to read the done scans from the state, seconds to write their mapping CSV), as
    the copy's write_outputs does both."""
    job = load_job(job_path)
    store = StateStore.open(job.state_path, create=False)
    try:
        started = time.monotonic()
        outcomes = store.outcomes(ItemKind.SCAN)
        pairs = [(source, target) for source, target, status in outcomes if status == Status.DONE]
        read = time.monotonic() - started
    finally:
        store.close()
    started = time.monotonic()
    write_csv(out, ["Source_Scan_ID", "Target_Scan_ID"], pairs)
    return read, time.monotonic() - started


# -- the run ------------------------------------------------------------------------------------


def first_event(timed: Timed, name: str, **match: Any) -> float | None:
    for at, event in timed.events:
        if event.get("event") == name and all(str(v) in str(event.get(k)) for k, v in match.items()):
            return at
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=100_000, help="finished scans (default 100000)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (printed)")
    args = parser.parse_args(argv)
    n = args.scans
    results: dict[str, float] = {}
    rss: dict[str, float] = {}

    tmp = Path(tempfile.mkdtemp(prefix="bench100k-"))
    try:
        with Sandbox(tmp / "sandbox", scans=2, files_per_scan=1, processing_delay=0.0) as sb:
            started = time.monotonic()
            target_store = int(sb.info["target_store_id"])
            fill_databases(sb, n, target_store)
            print(f"databases: {n} scans per side with reports in {time.monotonic() - started:.1f}s")
            jobs = tmp / "jobs"
            jobs.mkdir()
            scan_list = jobs / "scans.csv"
            scan_list.write_text("scan_id\n" + "".join(f"{SOURCE_BASE + g}\n" for g in range(1, n + 1)))
            job_path = write_copy_job(
                jobs,
                sb,
                store=target_store,
                scan_ids=[],
                name="copy100k",
                scans={"file": "scans.csv"},
                batch={"workers": {"download": 20, "upload": 20, "create": 10}},
                analysis={"enabled": True, "wait_for_processing": "5m"},
            )
            started = time.monotonic()
            size = build_state(job_path, n)
            print(
                f"state: {n} scans, {n * FILES_PER_SCAN} files, {size:.0f} MB, built in "
                f"{time.monotonic() - started:.1f}s"
            )

            env = child_env(tmp / "pycache")
            first = run_scanjobs(["run", str(job_path), "--json"], jobs, env)
            mapped = first_event(first, "output", what="scan mapping")
            analysed = first_event(first, "analysis_summary")
            print(
                f"first run after the copy (exit {first.code}): {first.seconds:.1f}s, mapping CSV "
                f"written at {mapped or float('nan'):.1f}s, analysis summary at "
                f"{analysed or float('nan'):.1f}s, peak RSS {first.rss_mb:.0f} MB"
            )
            if mapped is not None and analysed is not None and first.code == 0:
                results["analysis"] = analysed - mapped
            else:
                results["analysis"] = float("inf")
            results["first run"] = first.seconds
            rss["first run"] = first.rss_mb

            for label, command in (
                ("rerun", ["run", str(job_path), "--json"]),
                ("status", ["status", str(job_path)]),
                ("status --json", ["status", str(job_path), "--json"]),
                ("plan", ["plan", str(job_path)]),
            ):
                timed = run_scanjobs(command, jobs, env)
                ok = timed.code == 0 or (label == "plan" and timed.code in (0, 1))
                results[label] = timed.seconds if ok else float("inf")
                rss[label] = timed.rss_mb
                if label == "rerun" and "analysis up to date" not in timed.stdout:
                    print("  (the rerun did not find the analysis up to date)")

            read, write = time_mapping_csv(job_path, tmp / MAPPING_CSV)
            results["state read (mapping)"] = read
            results["mapping CSV write"] = write
        results["peak RSS"] = max(rss.values())
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)

    missed = False
    print(f"\n{n} finished scans:")
    for label, value in results.items():
        unit = TARGETS.get(label, (0.0, "MB" if label == "peak RSS" else "s"))[1]
        line = f"  {label:<22} {value:8.2f} {unit}"
        if label in rss:
            line += f"   (peak RSS {rss[label]:.0f} MB)"
        if label in TARGETS:
            target = TARGETS[label][0]
            verdict = "ok" if value < target else "MISSED"
            missed = missed or verdict == "MISSED"
            line += f"   target < {target:g} {unit}: {verdict}"
        print(line)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

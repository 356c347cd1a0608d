"""Benchmark of copy mode against local sandboxes: throughput vs its bound, start-up, under faults,
peak RSS.

Run from a checkout: `.venv/bin/python tests/bench/bench_copy.py` (takes a few minutes).

Every run uses the job's default retry and timeout settings (no `retry` section: backoff 1-60 s,
read timeout 120 s), as a user's job does; without faults they never come into play.

(a) With per-request latency L (50 ms, jittered 0.5x-1.5x by the sandbox) and the legacy worker
    counts download/upload/create = 20/20/10, the throughput bound is the slowest stage's
        workers / (requests per scan x L)
    where per scan of F files the download stage makes 2F requests (file meta + bytes), upload F,
    create 1. With F = 3: min(20/(6L), 20/(3L), 10/L) = 20/(6 x 0.05) = 66.7 scans/s.
    Enough scans must be in flight to feed it (batch.size): a scan needs about 4 round trips
    (meta, bytes, upload, create), so batch.size >= bound x 4L = 13. The default run leaves
    batch.size out and is judged on its end-to-end rate (the run's own summary); a run with 60
    in flight is judged on the steady rate: scans finished between the 10th and the 90th
    percentile of completion times (the bound is a steady-state rate; the end-to-end rate also
    carries the run's fixed costs: opening both databases, selecting the scans, a ramp-up of four
    round trips, the drain of the last scans).
    Start-up: from just before the process is started to the first request the sandbox's API
    saw from it (its `first_request_at`, source or target), and to its first connection to a
    platform database (from PostgreSQL's connection log); judged on the median of the two runs
    above and of three more starts of the same job with `--limit 5` (a single start is at the
    mercy of whatever else the machine does). The children get a bytecode cache
    (PYTHONPYCACHEPREFIX in the bench's folder, filled before the runs), as an installed
    scanjobs has: without one (PYTHONDONTWRITEBYTECODE), every start compiles scanjobs again.
(b) The same as the run with 60 in flight, with 2% transient faults (502/503/429/reset, and on
    reads a hang of 15 s that the default read timeout of 120 s does not cut), three times, each
    against the fault-free rate end to end (retried stragglers at the end are part of what faults
    cost). Each must copy every scan and file once: as many scans and uploads in the target store
    as the source has (after the reruns that complete a run whose lost upload answers failed
    scans). Hedged reads, when the run's summary counts them, are printed per run.
(c) Peak RSS of the scanjobs process while copying 10 scans x 3 files x 20 MB.
Targets (issues 4 and 14): (a) >= 80% of the bound, start-up < 0.5 s (median); (b) >= 70% of
fault-free in 3 of 3 runs, nothing copied twice; (c) < 200 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg

# Run as a plain script from a checkout: make the repository and the test helpers importable.
ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from children import child_env  # noqa: E402
from copy_support import scans_in_store, uploads_in_store, write_copy_job  # noqa: E402

from scanjobs.jobfile.model import BatchOptions, Workers  # noqa: E402
from scanjobs.modes.copy.plan import batch_size_for  # noqa: E402
from scanjobs.sandbox import Sandbox  # noqa: E402
from scanjobs.sandbox.postgres import SUPERUSER  # noqa: E402

WORKERS = {"download": 20, "upload": 20, "create": 10}
FILES = 3


def bound(latency_s: float, files: int = FILES) -> tuple[float, str]:
    stages = {
        "download": WORKERS["download"] / (2 * files * latency_s),
        "upload": WORKERS["upload"] / (files * latency_s),
        "create": WORKERS["create"] / (1 * latency_s),
    }
    slowest = min(stages, key=lambda s: stages[s])
    return stages[slowest], slowest


def run_copy(
    sb: Sandbox,
    folder: Path,
    name: str,
    scan_ids: list[int],
    *,
    batch_size: int | None,
    env: dict[str, str],
    connections: ConnectionLog | None = None,
    sample_rss: bool = False,
    reruns: int = 0,
    limit: int | None = None,
) -> dict[str, Any]:
    """Copy into a fresh store as a child process; its summary, wall time, start-up and peak RSS.

    The job has no `retry` section: the defaults apply. With `reruns`, a first run that ends with
    failed scans (exit 1: under faults, an upload whose answer was lost is not resent) is rerun up
    to that many times to complete the copy, as a user would; the figures are the first run's,
    plus how many reruns it took, and what the target store holds at the end. `limit` is the
    first run's `--limit`.
    """
    store = sb.new_target_store()
    batch: dict[str, Any] = {"workers": WORKERS, "max_failed_ratio": 1}
    if batch_size is not None:  # else the default: what keeps the workers busy
        batch["size"] = batch_size
    job = write_copy_job(folder, sb, store=store, scan_ids=scan_ids, name=name, batch=batch, retry=None)
    log = folder / f"{name}.jsonl"  # a file, not a pipe: a full pipe would stall the child
    sb.reset_stats()  # the start-up is the first request counted after this
    log_mark = connections.mark() if connections is not None else 0
    platform_cpu = _platform_cpu(sb)
    client_cpu = _children_cpu()
    started = time.time()  # wall clock, as the sandbox's `first_request_at` and PostgreSQL's log
    began = time.monotonic()
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scanjobs",
                "run",
                str(job),
                "--json",
                *(["--limit", str(limit)] if limit else []),
            ],
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    peak = 0
    if sample_rss:
        ps = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                peak = max(peak, ps.memory_info().rss)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.02)  # the sampling period, not a wait for something
    proc.wait(600)
    out = log.read_text(encoding="utf-8")
    wall = time.monotonic() - began
    client_cpu = _children_cpu() - client_cpu
    platform_cpu = _platform_cpu(sb) - platform_cpu
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    summary = next((e for e in events if e.get("event") == "summary"), None)
    if summary is None or proc.returncode not in ((0, 1) if reruns else (0,)):
        raise SystemExit(f"{name}: exit {proc.returncode}\n{out[-3000:]}")
    stats = [sb.stats(instance) for instance in ("source", "target")]
    first_request = min((t for t in (st["first_request_at"] for st in stats) if t is not None), default=None)
    first_db = connections.first_since(log_mark) if connections is not None else None
    took = 0
    while proc.returncode != 0 and took < reruns:
        took += 1
        with open(folder / f"{name}.rerun{took}.jsonl", "w", encoding="utf-8") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "scanjobs", "run", str(job), "--json"],
                cwd=ROOT,
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
            proc.wait(600)
    if proc.returncode != 0:
        raise SystemExit(f"{name}: exit {proc.returncode} after {took} rerun(s)")
    faults = sum(sb.stats(instance)["faults_injected"] for instance in ("source", "target"))
    done = [e["ts"] for e in events if e.get("event") == "item" and e.get("status") == "done"]
    began_at = next((e["ts"] for e in events if e.get("event") == "run_started"), events[0]["ts"])
    return {
        "timeline": timeline(events, began_at, done),
        "rate": float(summary["rate"]),
        "steady": steady_rate(done),
        "elapsed": float(summary["elapsed"]),
        "wall": wall,
        "failed": summary["failed"],
        "hedges": summary.get("hedges"),
        "reruns": took,
        "peak_rss": peak,
        "scans": len(scans_in_store(sb, store)),
        "uploads": uploads_in_store(sb, store),
        "faults": faults,
        "startup": None if first_request is None else first_request - started,
        "startup_db": None if first_db is None else first_db - started,
        "client_cpu": client_cpu,
        "platform_cpu": platform_cpu,
    }


class ConnectionLog:
    """PostgreSQL's log of connections: when a client first connected to a platform database.

    Turned on here (it is off in the sandbox) through the superuser the sandbox's folder keeps;
    each line starts with its time as a Unix epoch with milliseconds (`%n`).
    """

    def __init__(self, sb: Sandbox) -> None:
        self.path = sb.dir / "pg" / "postgres.log"
        db = sb.db("source")
        self.user = str(db["user"])
        password = (sb.dir / "pg" / "superuser.pw").read_text().strip()
        with psycopg.connect(
            host=db["host"],
            port=db["port"],
            dbname="postgres",
            user=SUPERUSER,
            password=password,
            autocommit=True,
        ) as conn:
            conn.execute("ALTER SYSTEM SET log_connections = on")
            conn.execute("ALTER SYSTEM SET log_line_prefix = '%n [%p] '")
            conn.execute("SELECT pg_reload_conf()")

    def mark(self) -> int:
        return self.path.stat().st_size

    def first_since(self, mark: int) -> float | None:
        """The time of the first connection of the platform's user logged after `mark`."""
        with open(self.path, "rb") as fh:
            fh.seek(mark)
            text = fh.read().decode("utf-8", errors="replace")
        line = re.compile(
            rf"^(\d+\.\d+) \[\d+\] LOG:  connection authorized: user={re.escape(self.user)} ", re.M
        )
        return min((float(m.group(1)) for m in line.finditer(text)), default=None)


def timeline(events: list[dict[str, Any]], began_at: float, done: list[float]) -> str:
    """When the scans finished (seconds from run_started); with a long tail (the last scan
    more than 3 s after 99% of them), the retries and warnings of that tail, to see what held it."""
    if not done:
        return "no scan finished"
    ends = sorted(t - began_at for t in done)
    at = {q: ends[int(q * (len(ends) - 1))] for q in (0.5, 0.99)}
    text = f"scans done by {at[0.5]:.1f} s (half), {at[0.99]:.1f} s (99%), {ends[-1]:.1f} s (last)"
    if ends[-1] - at[0.99] > 3:
        tail = [
            f"{e['ts'] - began_at:.1f} s {e['event']}: "
            + ", ".join(f"{k}={v}" for k, v in e.items() if k not in ("ts", "event"))
            for e in events
            if e.get("event") in ("retry", "warning") and e["ts"] - began_at >= at[0.99] - 15
        ]
        text += "; the tail:\n        " + "\n        ".join(tail[-15:] or ["(no retry nor warning)"])
    return text


def steady_rate(finished: list[float]) -> float:
    """Scans per second between the 10th and the 90th percentile of completion times.

    The bound is a steady-state rate: this leaves out the ramp-up (the first scan needs four
    round trips before it can finish) and the drain (the last scans finish with most workers
    idle), both fixed costs that any finite run adds to its end-to-end rate.
    """
    finished = sorted(finished)
    first, last = int(len(finished) * 0.1), int(len(finished) * 0.9) - 1
    span = finished[last] - finished[first]
    return (last - first) / span if span > 0 else 0.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _platform_cpu(sb: Sandbox) -> float:
    """CPU seconds used so far by the sandbox process and its PostgreSQL server with its backends."""
    procs = [psutil.Process(int(sb.info["pid"]))]
    # PostgreSQL runs detached from the sandbox process: find its postmaster by its pid file.
    pidfile = sb.dir / "pg" / "data" / "postmaster.pid"
    if pidfile.exists():
        postmaster = psutil.Process(int(pidfile.read_text().split()[0]))
        procs += [postmaster, *postmaster.children(recursive=True)]
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def cpu_line(run: dict[str, Any], scans: int) -> str:
    """Where the CPU went: on a small machine the client and the sandbox share the cores."""
    client, platform = run["client_cpu"] / scans * 1000, run["platform_cpu"] / scans * 1000
    cores = os.cpu_count() or 1
    ceiling = cores / ((client + platform) / 1000)
    return (
        f"    CPU per scan: scanjobs {client:.0f} ms, sandbox + PostgreSQL {platform:.0f} ms: "
        f"{cores} cores saturate at ~{ceiling:.0f} scans/s"
    )


def startup_text(run: dict[str, Any]) -> str:
    http = "no request seen" if run["startup"] is None else f"{run['startup']:.2f} s"
    db = "" if run["startup_db"] is None else f" (first database connection {run['startup_db']:.2f} s)"
    return http + db


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f} s)"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scans", type=int, default=600, help="scans for (a) and (b) (600)")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--fault-rate", type=float, default=0.02)
    parser.add_argument("--fault-runs", type=int, default=3, help="runs with faults for (b) (3)")
    parser.add_argument(
        "--startup-runs", type=int, default=3, help="more starts for (a)'s start-up median (3)"
    )
    parser.add_argument("--batch-size", type=int, default=60, help="scans in flight for (a) and (b) (60)")
    parser.add_argument("--big-mb", type=float, default=20.0, help="file size for (c) in MB (20)")
    parser.add_argument("--skip-rss", action="store_true")
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    limit, stage = bound(latency)
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-copy-") as tmp:
        root = Path(tmp)
        env = child_env(root / "pycache")
        print(
            f"(a) throughput: {args.scans} scans x {FILES} files, latency {args.latency_ms:g} ms, "
            f"workers {WORKERS['download']}/{WORKERS['upload']}/{WORKERS['create']}; "
            "the job's default retry and timeouts"
        )
        per_scan = 2 * FILES if stage == "download" else FILES if stage == "upload" else 1
        print(
            f"    bound = min over stages of workers / (requests per scan x latency) = {limit:.1f} scans/s "
            f"({stage}: {WORKERS[stage]} / ({per_scan} x {latency:g} s))"
        )
        with Sandbox(
            root / "sb",
            scans=args.scans,
            files_per_scan=FILES,
            latency_ms=args.latency_ms,
            processing_delay=60,
            seed=3,
            hang_seconds=15,
        ) as sb:
            ids = list(sb.info["source_scan_ids"])
            connections = ConnectionLog(sb)
            default = run_copy(
                sb, root / "jobs", "default", ids, batch_size=None, env=env, connections=connections
            )
            in_flight = batch_size_for(BatchOptions(workers=Workers(**WORKERS)), FILES)
            share = default["rate"] / limit
            ok &= share >= 0.8
            print(
                f"    batch.size by default ({in_flight} in flight): end to end {default['rate']:.1f} "
                f"scans/s = {share:.0%} of the bound, the run's own rate [target >= 80%: "
                f"{'ok' if share >= 0.8 else 'MISSED'}]; steady {default['steady']:.1f} scans/s"
            )
            print(f"      start-up: {startup_text(default)}")
            clean = run_copy(
                sb, root / "jobs", "clean", ids, batch_size=args.batch_size, env=env, connections=connections
            )
            share = clean["steady"] / limit
            ok &= share >= 0.8
            print(
                f"    batch.size {args.batch_size}: steady {clean['steady']:.1f} scans/s = "
                f"{share:.0%} of the bound [target >= 80%: {'ok' if share >= 0.8 else 'MISSED'}]"
            )
            print(
                f"      end to end {clean['rate']:.1f} scans/s = {clean['rate'] / limit:.0%} of the bound "
                f"({clean['elapsed']:.2f} s in the run with its database queries, ramp-up and drain; "
                f"{clean['wall']:.2f} s wall with start-up: {startup_text(clean)})"
            )
            print(cpu_line(clean, len(ids)))
            # One start is at the mercy of whatever else the machine does: more starts of the same
            # job (all its scans selected and put in its state, 5 of them copied) give a median.
            starts = [default, clean] + [
                run_copy(
                    sb,
                    root / "jobs",
                    f"start{n}",
                    ids,
                    batch_size=None,
                    env=env,
                    connections=connections,
                    limit=5,
                )
                for n in range(1, args.startup_runs + 1)
            ]
            http = [r["startup"] for r in starts if r["startup"] is not None]
            db = [r["startup_db"] for r in starts if r["startup_db"] is not None]
            # The first platform request: the platform's database or its API, whichever comes
            # first (a copy reads the database before it logs in to the API).
            first = [min(t for t in (r["startup"], r["startup_db"]) if t is not None) for r in starts]
            quick = len(http) == len(starts) and statistics.median(first) < 0.5
            ok &= quick
            print(
                f"    start-up of the {len(ids)}-scan job, {len(starts)} starts (the two above, "
                f"{args.startup_runs} with --limit 5), from just before the process starts to its "
                f"first platform request: {spread(first)} [target < 0.5 s: {'ok' if quick else 'MISSED'}]"
                f"; to its first database connection {spread(db) if db else 'not seen'}, to its "
                f"first API request (the login, after the database work) {spread(http)}"
            )
            print(
                f"(b) with {args.fault_rate:.0%} faults (502/503/429/reset, and 15 s hangs on reads), "
                f"batch.size {args.batch_size}, the job's default retry and timeouts; each run against "
                f"the fault-free {clean['rate']:.1f} scans/s end to end"
            )
            met = 0
            sb.configure(fault_rate=args.fault_rate)
            try:
                for n in range(1, args.fault_runs + 1):
                    faulty = run_copy(
                        sb, root / "jobs", f"faults{n}", ids, batch_size=args.batch_size, env=env, reruns=2
                    )
                    share = faulty["rate"] / clean["rate"]  # end to end: stragglers' retries are the cost
                    once = faulty["scans"] == len(ids) and faulty["uploads"] == FILES * len(ids)
                    met += share >= 0.7
                    ok &= once
                    hedges = faulty["hedges"]
                    hedged = f"; hedges {hedges['sent']} sent, {hedges['won']} won" if hedges else ""
                    print(
                        f"    run {n} ({faulty['faults']} faults injected): end to end {faulty['rate']:.1f} "
                        f"scans/s (steady {faulty['steady']:.1f}, {faulty['elapsed']:.1f} s) = {share:.0%} "
                        f"of fault-free [>= 70%: {'ok' if share >= 0.7 else 'MISSED'}]; failed "
                        f"{faulty['failed']} (not resent: completed by {faulty['reruns']} rerun(s)); "
                        f"scans {faulty['scans']} for {len(ids)}, uploads {faulty['uploads']} for "
                        f"{FILES * len(ids)} files [each once: {'ok' if once else 'MISSED'}]{hedged}"
                    )
                    print(f"      {faulty['timeline']}")
            finally:
                sb.configure(fault_rate=0)
            ok &= met == args.fault_runs
            print(
                f"    {met} of {args.fault_runs} runs at >= 70% of fault-free [target {args.fault_runs} of "
                f"{args.fault_runs}: {'ok' if met == args.fault_runs else 'MISSED'}]"
            )
        if not args.skip_rss:
            size = int(args.big_mb * 1_000_000)
            with Sandbox(
                root / "big", scans=10, files_per_scan=FILES, file_bytes=size, processing_delay=60, seed=5
            ) as sb:
                big = run_copy(
                    # its own folder: instances.yaml beside the first jobs names the first sandbox
                    sb,
                    root / "jobs-big",
                    "big",
                    list(sb.info["source_scan_ids"]),
                    batch_size=10,
                    env=env,
                    sample_rss=True,
                )
            children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB -> MiB
            mb = big["peak_rss"] / 2**20
            ok &= mb < 200
            print(
                f"(c) peak RSS copying 10 scans x {FILES} x {args.big_mb:g} MB "
                f"({10 * FILES * size / 1e6:.0f} MB): {mb:.0f} MiB sampled every 20 ms "
                f"(getrusage max over waited children: {children:.0f} MiB); {big['elapsed']:.1f} s "
                f"[target < 200 MB: {'ok' if mb < 200 else 'MISSED'}]"
            )
    print("all targets met" if ok else "some targets MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Command line: argument parsing, one small function per subcommand, one error handler."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sqlite3
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from scanjobs import __version__
from scanjobs.errors import ExitCode, JobError, ScanjobsError, StateError
from scanjobs.events import EventBus, make_console_sink
from scanjobs.jobfile import load_job, schema_path
from scanjobs.jobrepo import find_job_files, write_schema
from scanjobs.state import (
    SELECTION_DAY,
    ItemKind,
    RunLock,
    RunRecord,
    StateCounts,
    StatePaths,
    StateStore,
    Status,
)

__all__ = ["main", "main_entry", "build_parser"]

EXAMPLES = {
    "run": "scanjobs run jobs/copy.yaml            # rerun the same command to resume",
    "validate": "scanjobs validate jobs/            # every job file under the folder",
    "schema": "scanjobs schema --write schemas/job.schema.json",
    "plan": "scanjobs plan jobs/copy.yaml",
    "status": "scanjobs status jobs/copy.yaml --json",
    "reset": "scanjobs reset jobs/copy.yaml --yes",
    "sandbox": "scanjobs sandbox up --dir .sandbox --scans 30",
    "demo": "scanjobs demo --dir scanjobs-demo",
    "init": "scanjobs init copy jobs/my-copy.yaml",
}


def _job_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", type=Path, help="the job file (YAML)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scanjobs",
        description="Declarative, resumable jobs that copy, download and compare shelf scans.",
        epilog="examples:\n  " + "\n  ".join(EXAMPLES.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"scanjobs {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more detail (retries, every item)"
    )
    parser.add_argument("-q", "--quiet", action="count", default=0, help="only warnings and the summary")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # -v/-q also after the command (`scanjobs run job.yaml -q`); SUPPRESS keeps the global value
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more detail (retries, every item)"
    )
    common.add_argument(
        "-q", "--quiet", action="count", default=argparse.SUPPRESS, help="only warnings and the summary"
    )

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=[common],
            epilog=f"example:\n  {EXAMPLES[name]}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    p = add("run", "run a job; rerunning the same command resumes it")
    _job_arg(p)
    p.add_argument(
        "--restart",
        action="store_true",
        help="start over: the old state is kept aside as a backup (needed after the job's "
        "source, target or strategy changed)",
    )
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="retry every failed item, also those that failed for good (not found, no files, refused "
        "by the platform), which a plain rerun leaves as they are; take no new scans",
    )
    p.add_argument(
        "--accept-permanent",
        action="store_true",
        help="exit 0 when the only failures are permanent ones (not found, no files, refused by the "
        "platform): for CI runs that know of them; they are still reported",
    )
    p.add_argument("--limit", type=int, metavar="N", help="take at most N new scans in this run")
    p.add_argument(
        "--reanalyze",
        action="store_true",
        help="only rewrite the analysis from the platform's current data (a copy job: the pairs "
        "its state recorded), copying nothing; also on a finished job",
    )
    p.add_argument("--json", action="store_true", help="one JSON event per line on stdout")
    p.set_defaults(func=cmd_run)

    p = add("validate", "check job files without touching the network")
    p.add_argument(
        "jobs",
        type=Path,
        nargs="+",
        metavar="JOB",
        help="a job file, or a folder: every job file under it (*.yaml and *.yml with a top-level "
        "`mode:` key, instances.yaml aside; hidden folders are left out)",
    )
    p.add_argument(
        "--jobs-only",
        action="store_true",
        help="skip the files given that are not job files, and take an instances.yaml as the jobs "
        "beside it (for the pre-commit hook, which passes every YAML file committed)",
    )
    p.set_defaults(func=cmd_validate)

    p = add("schema", "print the JSON Schema of job files, or write it (for editors and CI)")
    p.add_argument(
        "--write",
        type=Path,
        metavar="PATH",
        help="write it to PATH (e.g. schemas/job.schema.json in a repository of jobs, as `init` does)",
    )
    p.set_defaults(func=cmd_schema)

    p = add("plan", "read-only preflight against the platform: what a run would do")
    _job_arg(p)
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(func=cmd_plan)

    p = add("status", "show a job's recorded progress (also while it runs)")
    _job_arg(p)
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.add_argument(
        "--runs",
        action="store_true",
        help="list every run of the job instead: start, end, exit code, counts (--json: as objects)",
    )
    p.set_defaults(func=cmd_status)

    p = add("reset", "delete a job's state (and only its state: outputs stay)")
    _job_arg(p)
    p.add_argument("--yes", action="store_true", help="do not ask")
    p.set_defaults(func=cmd_reset)

    p = add("sandbox", "a local twin of the platform (PostgreSQL + HTTP API) for trying jobs")
    sandbox_sub = p.add_subparsers(dest="sandbox_command", metavar="{up,info,down}")
    sandbox_sub.required = True
    # The sandbox owns its options (its parser is built only when it runs, so other commands
    # don't import the web server); `scanjobs sandbox up --help` shows them.
    up = sandbox_sub.add_parser(
        "up",
        help="start the sandbox in the foreground until Ctrl-C / SIGTERM (--help lists its options)",
        add_help=False,
    )
    up.set_defaults(func=cmd_sandbox_up, forwards_arguments=True)
    info = sandbox_sub.add_parser(
        "info",
        help="where a sandbox is, its ports, whether it runs, where its credentials come from",
        description="Where the sandbox of DIR is, its ports (kept across restarts), whether it runs, "
        "where its credentials and data come from. Never prints a secret.",
        parents=[common],
    )
    info.add_argument("--dir", type=Path, required=True, help="the sandbox's folder")
    info.add_argument("--json", action="store_true", help="print it as JSON")
    info.set_defaults(func=cmd_sandbox_info)
    down = sandbox_sub.add_parser(
        "down",
        help="stop the sandbox running in DIR (e.g. one started in the background)",
        description="Stop the sandbox running in DIR (SIGTERM; it stops its PostgreSQL) and wait "
        "until it has exited; also stops a PostgreSQL that a killed sandbox left running.",
        parents=[common],
    )
    down.add_argument("--dir", type=Path, required=True, help="the sandbox's folder")
    down.add_argument(
        "--timeout", type=_positive, default=60.0, help="seconds to wait before killing it (60)"
    )
    down.set_defaults(func=cmd_sandbox_down)

    p = add("demo", "start a sandbox, write demo jobs, run them and show the reports")
    p.add_argument(
        "--dir",
        type=Path,
        default=Path("scanjobs-demo"),
        help="where the demo lives (default: ./scanjobs-demo)",
    )
    p.add_argument("--scans", type=int, default=12, help="scans in the demo (default 12)")
    p.add_argument(
        "--keep-running",
        action="store_true",
        help="keep the sandbox up afterwards (until Ctrl-C) to rerun or plan the jobs by hand",
    )
    p.set_defaults(func=cmd_demo)

    p = add("init", "write a commented job file to start from")
    p.add_argument("mode", choices=["copy", "download", "analyze", "compare"])
    p.add_argument("path", type=Path, nargs="?", help="default: jobs/<mode>.yaml")
    p.add_argument(
        "--force",
        action="store_true",
        help="overwrite an existing job file; with --sandbox, also replace the sandbox's own entries "
        "in instances.yaml and .env when they differ (the rest of those files stays as it is)",
    )
    p.add_argument(
        "--sandbox",
        type=Path,
        metavar="DIR",
        help="write a job against the sandbox running in DIR (`scanjobs sandbox up --dir DIR`), and "
        "add its instances to instances.yaml and its credentials to .env beside it (created if "
        "absent; an entry of the same name that differs is refused without --force)",
    )
    p.set_defaults(func=cmd_init)
    return parser


def _positive(text: str) -> float:
    value = float(text)
    if not 0 < value < 86400:
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds above 0")
    return value


def _verbosity(args: argparse.Namespace) -> int:
    return int(args.verbose) - int(args.quiet)


def _events(args: argparse.Namespace, json_lines: bool = False) -> EventBus:
    return EventBus(make_console_sink(sys.stdout, json_lines=json_lines, verbosity=_verbosity(args)))


def cmd_validate(args: argparse.Namespace) -> int:
    found = find_job_files(args.jobs, jobs_only=args.jobs_only)
    folders = [p for p in args.jobs if p.is_dir()]
    if folders and not found.jobs and not args.jobs_only:
        raise JobError(f"no job file under {', '.join(map(str, folders))} (*.yaml or *.yml with `mode:`)")
    invalid = 0
    for path in found.jobs:
        try:
            job = load_job(path)
        except JobError as exc:
            print(f"{path}: invalid\n{exc}", file=sys.stderr)
            invalid += 1
            continue
        unset = [s.var for inst in _instances(job) for s in inst.secrets() if s.value is None and s.var]
        api_login = [
            v for v in unset if v.endswith("_USERNAME") or v.endswith("_PASSWORD") and "_DB_" not in v
        ]
        token = "; or, for an API login, an instance's token: NAME_TOKEN" if api_login else ""
        note = f" (to run it, set: {', '.join(dict.fromkeys(unset))}{token})" if unset else ""
        print(f"{path}: ok, mode {job.mode}, {job.describe()}{note}")
    if folders:
        skipped = f"; {len(found.skipped)} other YAML file(s) skipped (no `mode:`)" if found.skipped else ""
        print(f"{len(found.jobs)} job file(s): {len(found.jobs) - invalid} ok, {invalid} invalid{skipped}")
    return int(ExitCode.INVALID if invalid else ExitCode.OK)


def cmd_schema(args: argparse.Namespace) -> int:
    if args.write is None:
        sys.stdout.write(schema_path().read_text(encoding="utf-8"))
        return int(ExitCode.OK)
    written = write_schema(args.write)
    print(f"{'wrote' if written else 'up to date:'} {args.write}")
    return int(ExitCode.OK)


def _instances(job: Any) -> list[Any]:
    return list(job.instances())


def cmd_run(args: argparse.Namespace) -> int:
    # lazy: the platform clients (psycopg, requests) load only for commands that talk to it
    from scanjobs.lifecycle import RunOptions, error_fields, run_job

    events = _events(args, json_lines=args.json)
    try:
        refusal = None
        if args.limit is not None and args.limit < 1:
            refusal = JobError("--limit must be a positive number")
        elif args.reanalyze and (args.restart or args.retry_failed or args.limit is not None):
            refusal = JobError(
                "--reanalyze copies nothing: it does not go with --restart, --retry-failed or --limit"
            )
        if refusal is not None:
            events.emit("error", **error_fields(refusal))
            raise refusal
        try:
            job = load_job(args.job)
        except JobError as exc:
            events.emit(
                "job_invalid",
                file=str(args.job),
                exit_code=int(exc.exit_code),
                message=exc.reason,
                problems=exc.problems,
            )
            raise
        if args.reanalyze and job.mode == "download":
            refusal = JobError(f"--reanalyze: {args.job} is a download job, which has no analysis")
            events.emit("error", **error_fields(refusal))
            raise refusal
        code = run_job(
            job,
            RunOptions(
                restart=args.restart,
                retry_failed=args.retry_failed,
                limit=args.limit,
                accept_permanent=args.accept_permanent,
                reanalyze=args.reanalyze,
            ),
            events,
        )
    finally:
        events.close()
    return int(code)


def cmd_plan(args: argparse.Namespace) -> int:
    # lazy: the platform clients (psycopg, requests) load only for commands that talk to it
    from scanjobs.lifecycle import plan_job

    job = load_job(args.job)
    events = _events(args)
    try:
        report = plan_job(job, events)
    finally:
        events.close()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        for line in report.lines:
            print(line)
    return int(report.exit_code)


def _open_state_to_read(job: Any) -> StateStore:
    """The job's state to read (`status`): not every page checked first (half a second at 100k
    scans), so a damaged one is met as sqlite3.DatabaseError, which the reader reports as a
    StateError. The lifecycle and the modes are not imported: `status` talks to no platform."""
    return StateStore.open(job.state_path, create=False, verify=False)


def status_report(job_path: Path) -> dict[str, Any]:
    job = load_job(job_path)
    paths = StatePaths(job.state_path)
    if not paths.db.exists():
        return {
            "job": str(job.path),
            "state": str(paths.db),
            "started": False,
            "counts": StateCounts(),
            "failures": [],
            "not_selected": {},
            "runs": [],
            "running": None,
            "selection": None,
        }
    store = _open_state_to_read(job)
    try:
        counts, not_selected = store.counts_by_selection()
        failures = [
            {
                "kind": r.kind.value,
                "id": r.key,
                "step": r.step,
                "error_class": r.error_class,
                "error": r.error_message,
                "attempts": r.attempts,
                "permanent": r.final,
            }
            for kind in (ItemKind.SCAN, ItemKind.IMAGE, ItemKind.FILE)
            for r in store.items(kind, status=Status.FAILED, selected_only=True)
        ]
        runs = store.runs()
        day = store.meta(SELECTION_DAY)
    except sqlite3.DatabaseError as exc:  # a damaged page: status does not check them first
        raise StateError(f"state file is damaged ({exc}): {paths.db}") from None
    finally:
        store.close()
    holder = RunLock(paths.lock).running()
    return {
        "job": str(job.path),
        "state": str(paths.db),
        "started": True,
        "counts": counts,
        "failures": failures,
        # items the job no longer selects: their record is kept, so adding them back resumes
        "not_selected": {k.value: not_selected.total(k) for k in sorted(not_selected.kinds)},
        "runs": runs[-5:],
        "running": holder,
        "selection": _selection(job, day),
    }


def _selection(job: Any, recorded: str | None) -> dict[str, str] | None:
    """A query with relative dates (`-7d`): the day its first run counted them from, which later
    runs keep, and the dates they stand for; None before a run recorded one."""
    query = getattr(getattr(job, "scans", None), "query", None)
    if recorded is None or query is None or not query.relative:
        return None
    try:
        day = datetime.date.fromisoformat(recorded)
    except ValueError:
        return None  # not a date of ours: a run would say so
    return {"day": recorded, "query": query.describe(day)}


def runs_report(job_path: Path) -> dict[str, Any]:
    """`status --runs --json`: the job, its state file, and every run the state recorded, oldest
    first, each an object (a run going on now has `status` "running"; one that ended without
    recording its end, killed say, "unrecorded")."""
    job = load_job(job_path)
    paths = StatePaths(job.state_path)
    records: list[RunRecord] = []
    if paths.db.exists():
        store = _open_state_to_read(job)
        try:
            records = store.run_records()
        finally:
            store.close()
    running = RunLock(paths.lock).running() is not None
    runs = []
    for run in records:
        if run.exit_code is not None:
            status = ExitCode(run.exit_code).name.lower() if run.exit_code in set(ExitCode) else "other"
        else:
            status = "running" if running and run is records[-1] else "unrecorded"
        runs.append(
            {
                "id": run.id,
                "started": _iso(run.started_at),
                "finished": _iso(run.finished_at),
                "exit_code": run.exit_code,
                "status": status,
                "pid": run.pid,
                "host": run.host,
                "summary": run.summary,
            }
        )
    return {"job": str(job.path), "state": str(paths.db), "runs": runs}


def _iso(timestamp: float | None) -> str | None:
    """A recorded time in the local time zone, ISO 8601 with its offset."""
    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def _print_runs(report: dict[str, Any]) -> None:
    runs = report["runs"]
    print(f"job {report['job']}: {len(runs)} run(s)")
    if not runs:
        return
    rows = [("run", "started", "ended", "exit", "done", "failed", "already done", "elapsed", "")]
    for run in runs:
        s = run["summary"]
        code = "-" if run["exit_code"] is None else f"{run['exit_code']} {run['status']}"
        notes = []
        if s.get("reanalyze"):
            notes.append("reanalyze")
        if "scans" in s:
            notes.append(f"analysis: {s['scans']} scan(s)")
        if run["exit_code"] is None:
            notes.append(run["status"])
        rows.append(
            (
                str(run["id"]),
                _local(run["started"]),
                _local(run["finished"]),
                code,
                str(s.get("done", "-")),
                str(s.get("failed", "-")),
                str(s.get("already_done", "-")),
                f"{s['elapsed']:.1f}s" if isinstance(s.get("elapsed"), (int, float)) else "-",
                ", ".join(notes),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


def _local(iso: str | None) -> str:
    return "-" if iso is None else iso[:19].replace("T", " ")


def cmd_status(args: argparse.Namespace) -> int:
    if args.runs:
        runs = runs_report(args.job)
        if args.json:
            print(json.dumps(runs, indent=2, default=str))
        else:
            _print_runs(runs)
        return int(ExitCode.OK)
    report = status_report(args.job)
    counts = report["counts"]  # a StateCounts
    if args.json:
        print(json.dumps({**report, "counts": counts.as_dict()}, indent=2, default=str))
        return int(ExitCode.OK)
    print(f"job {report['job']}")
    if not report["started"]:
        print("  not started yet (no state file)")
        return int(ExitCode.OK)
    if report["running"]:
        r = report["running"]
        print(f"  running now: pid {r.get('pid')} on {r.get('host')} since {r.get('started')}")
    for kind in sorted(counts.kinds):
        parts = ", ".join(f"{n} {s.value}" for s, n in sorted(counts.by_status(kind).items()))
        print(f"  {kind.value}s: {counts.total(kind)} ({parts})")
    if report["selection"]:
        s = report["selection"]
        print(f"  scans.query: {s['query']}, counted from {s['day']} (--restart counts again)")
    for kind, n in report["not_selected"].items():
        print(f"  {n} {kind}(s) no longer selected by the job: kept on record, not reported")
    if report["runs"]:
        last = report["runs"][-1]
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last["started_at"]))
        state = "running or killed" if last["exit_code"] is None else f"exit {last['exit_code']}"
        print(f"  last run: {when}, {state}")
    if report["failures"]:
        print(f"  failures ({len(report['failures'])}):")
        for f in report["failures"][:50]:
            final = " (permanent)" if f["permanent"] else ""
            print(f"    {f['kind']} {f['id']} at {f['step']}: {f['error_class']}: {f['error']}{final}")
        if len(report["failures"]) > 50:
            print(f"    ... and {len(report['failures']) - 50} more (--json lists all)")
        print(
            "  a rerun retries the others; `scanjobs run JOB --retry-failed` retries all, the "
            "permanent ones too"
        )
    return int(ExitCode.OK)


def cmd_reset(args: argparse.Namespace) -> int:

    job = load_job(args.job)
    paths = StatePaths(job.state_path)
    files = paths.existing()
    if not files:
        print(f"nothing to reset: {paths.db} does not exist")
        return int(ExitCode.OK)
    if not args.yes:
        if not sys.stdin.isatty():
            raise JobError(
                "reset deletes the record of finished work; add --yes to confirm", [str(p) for p in files]
            )
        answer = input(f"delete {', '.join(str(p) for p in files)}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return int(ExitCode.OK)
    paths.delete()  # under the run lock: refused while a run of the job is going
    print(f"state of {job.path.name} deleted; outputs under {job.output} are untouched")
    return int(ExitCode.OK)


def cmd_sandbox_up(args: argparse.Namespace) -> int:
    # lazy: the sandbox (aiohttp, embedded PostgreSQL) loads only for `sandbox` and `demo`
    from scanjobs.sandbox import add_arguments, options_from_args, run_up

    parser = argparse.ArgumentParser(
        prog="scanjobs sandbox up",
        description="Run a local twin of the platform (embedded PostgreSQL + HTTP API) until "
        "Ctrl-C or SIGTERM; DIR/sandbox.json tells how to reach it.",
        epilog=f"example:\n  {EXAMPLES['sandbox']}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return int(run_up(options_from_args(parser.parse_args(args.rest))))


def cmd_sandbox_info(args: argparse.Namespace) -> int:
    # lazy: the sandbox (aiohttp, embedded PostgreSQL) loads only for `sandbox` and `demo`
    from scanjobs.sandbox import SandboxError, describe, describe_lines

    try:
        report = describe(args.dir)
    except SandboxError as exc:
        raise JobError(str(exc)) from None
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(describe_lines(report)))
    return int(ExitCode.OK)


def cmd_sandbox_down(args: argparse.Namespace) -> int:
    # lazy: the sandbox (aiohttp, embedded PostgreSQL) loads only for `sandbox` and `demo`
    from scanjobs.sandbox import SandboxError, down

    try:
        print(down(args.dir, timeout=args.timeout))
    except SandboxError as exc:
        raise JobError(str(exc)) from None
    return int(ExitCode.OK)


def cmd_demo(args: argparse.Namespace) -> int:
    from scanjobs.demo import run_demo  # lazy: it loads the sandbox (aiohttp, embedded PostgreSQL)

    if args.scans < 1:
        raise JobError("--scans must be at least 1")
    return int(
        run_demo(args.dir, scans=args.scans, verbosity=_verbosity(args), keep_running=args.keep_running)
    )


def cmd_init(args: argparse.Namespace) -> int:
    # lazy: the templates (and the sandbox job writer) serve `init` only, not a run's start-up
    from scanjobs.templates import write_template

    path, schema = write_template(args.mode, args.path, force=args.force, sandbox=args.sandbox)
    print(f"wrote {path}; edit it, then: scanjobs validate {path} && scanjobs plan {path}")
    print(f"its $schema line names {schema} (commit it with the job: it works in every clone)")
    return int(ExitCode.OK)


CLOSED_PIPE = 141  # what a shell reports for a writer whose reader went away (128 + SIGPIPE)


def _crash_log(args: argparse.Namespace | None) -> Path:
    job = getattr(args, "job", None) if args else None
    if isinstance(job, Path):
        return job.resolve().with_name(job.stem + ".state.log")
    return Path(tempfile.gettempdir()) / f"scanjobs-crash-{os.getpid()}.log"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (never raises, except SystemExit from argparse)."""
    parser = build_parser()
    args: argparse.Namespace | None = None
    try:
        args, rest = parser.parse_known_args(argv)
        if rest and not getattr(args, "forwards_arguments", False):
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        args.rest = rest
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except BrokenPipeError:  # stdout's reader is gone (`scanjobs ... | head`): not a bug
        _drop_stdout()
        return CLOSED_PIPE
    except SystemExit as exc:  # argparse: --help is 0, usage errors are 2
        return int(exc.code) if isinstance(exc.code, int) else int(ExitCode.INVALID)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except StateError as exc:
        print(f"scanjobs: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except ScanjobsError as exc:
        print(f"scanjobs: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except Exception:  # a bug: keep the traceback for the report, show the path
        log = _crash_log(args)
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(
                    f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} scanjobs {__version__} "
                    f"internal error\n{traceback.format_exc()}\n"
                )
        except OSError:
            log = Path("(could not write the log)")
        print(f"scanjobs: internal error; the traceback is in {log} (please report it)", file=sys.stderr)
        return int(ExitCode.INTERNAL)


def _drop_stdout() -> None:
    """Send what is left for stdout nowhere, so that neither a later write nor the interpreter's
    last flush fails on a closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main_entry() -> None:
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _drop_stdout()
    sys.exit(code)

"""One events interface for every step: rendered as progress bars, plain lines or JSON lines."""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Protocol

__all__ = [
    "EVENTS",
    "EVENTS_VERSION",
    "EVENTS_TEE",
    "event_schemas",
    "Events",
    "EventBus",
    "JsonSink",
    "PlainSink",
    "RichSink",
    "LogSink",
    "make_console_sink",
]

EVENTS_VERSION = 1
"""The version of the contract below, carried as `v` in every --json line. Adding an event or an
optional field keeps it; renaming or removing one, or changing a field's type, raises it."""

# The --json events: one entry per event, its fields and their JSON types ("a|b": either;
# a trailing "?": the field may be absent). Every line also has `ts` (unix time), `event` and `v`.
# No other field may appear: tests check every event of the test suite's runs against this
# (`event_schemas()`), and the README's "The --json events" lists the same names.
EVENTS: dict[str, dict[str, str]] = {
    # lifecycle: first line of every run, before any other event of it
    "run_started": {"job": "string", "mode": "string", "file": "string"},
    # the mode's selection: `unit` (scan, or file for a download) counted in total/todo/...
    "selected": {
        "job": "string",
        "mode": "string",
        "unit?": "string",
        "total": "integer",
        "todo": "integer",
        "already_done": "integer",
        "final?": "integer",  # failed for good earlier: left as they are
        "resume?": "integer",
        "retry?": "integer",
        "deferred?": "integer",  # new scans left for a later run (--limit)
        "scans?": "integer",
        "reanalyze?": "boolean",  # `run --reanalyze`: todo 0, nothing is copied
    },
    "plan": {"steps": "object"},  # {step: total}: the totals of the progress bars
    "advance": {"step": "string", "n?": "integer"},  # a step's bar moves (one file moved)
    "item": {
        "scan_id": "integer",
        "file_id?": "integer",
        "step": "string",
        "status": "string",  # done | failed | skipped
        "error?": "string",
    },
    "batch": {
        "batch": "integer",
        "done": "integer",
        "failed": "integer",
        "finished": "integer",
        "total": "integer",
    },
    "retry": {
        "instance": "string",
        "call": "string",
        "attempt": "integer",
        "wait": "number",
        "reason": "string",
    },
    # target processing: processed counts the finished scans (done, error or interrupted)
    "waiting": {"processed": "integer", "total": "integer", "elapsed": "number"},
    "output": {"what": "string", "path": "string"},
    "info": {"message": "string"},
    "warning": {"message": "string"},
    # the copy's or the download's summary
    "summary": {
        "text": "string",
        "copied?": "integer",
        "downloaded?": "integer",
        "already_done": "integer",
        "failed": "integer",
        "failures_by_class?": "object",
        "elapsed": "number",
        "rate?": "number",
        "hedges?": "object",  # {reads, sent, won}
        "throttled?": "object",  # {instance: {decreases, pauses, lowest_rate, lowest_concurrency}}
    },
    # the compare's summary: rows per class (improved, regressed, unchanged, ...), and scans
    "compare_summary": {"text": "string", "classes": "object", "rows": "integer", "scans": "integer"},
    # a quality gate's verdict (report: analysis | compare; verdict: passed | breached), each
    # limit with {subject, limit, actual, scans, total, verdict, excess_scans}
    "gate": {"report": "string", "verdict": "string", "text": "string", "limits": "array"},
    # the analysis (of a copy job, or an analyze job): rows per comment
    # (scans: source scans; scans_by_comment: scans with each comment any scan has)
    "analysis_summary": {
        "text": "string",
        "comments": "object",
        "rows": "integer",
        "scans?": "integer",
        "scans_by_comment?": "object",
    },
    # an expected error that ends the run or refuses it (a run that started still ends with
    # run_finished); without a run: the lock of another run, a command-line error
    "error": {"exit_code": "integer", "status": "string", "message": "string", "hint?": "string"},
    # the job file is invalid (exit 2): nothing ran, no other event follows
    "job_invalid": {"file": "string", "exit_code": "integer", "message": "string", "problems": "array"},
    # lifecycle: last line of every run that started
    "run_finished": {
        "exit_code": "integer",
        "status": "string",
        "done": "integer",
        "failed": "integer",
        "already_done": "integer",
        "failures_by_class": "object",
        "elapsed": "number",
        "rate?": "number",
        "comments?": "object",
        "classes?": "object",  # a compare's rows per class
        "scans?": "integer",
        "unprocessed?": "integer",
        "reanalyze?": "boolean",
        "gate?": "string",  # the quality gate's verdict: passed | breached
    },
}

EVENTS_TEE = "SCANJOBS_EVENTS_TEE"
"""A folder: every event of every EventBus is also appended to <folder>/<pid>.jsonl as its --json
line, whatever the console shows (the tests set it, and check every line against EVENTS)."""


def event_schemas() -> dict[str, dict[str, Any]]:
    """Each event's JSON Schema (of a whole --json line), built from EVENTS."""
    schemas = {}
    for name, fields in EVENTS.items():
        properties: dict[str, Any] = {
            "ts": {"type": "number"},
            "event": {"const": name},
            "v": {"const": EVENTS_VERSION},
        }
        required = ["ts", "event", "v"]
        for key, kind in fields.items():
            field_name = key.rstrip("?")
            properties[field_name] = {"type": kind.split("|")}
            if not key.endswith("?"):
                required.append(field_name)
        schemas[name] = {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }
    return schemas


# What -q still shows: warnings, the summaries and a gate's verdict.
_QUIET_SHOWN = ("warning", "summary", "analysis_summary", "compare_summary", "gate")


class Sink(Protocol):
    def handle(self, event: str, fields: Mapping[str, Any]) -> None: ...
    def close(self) -> None: ...


class Events(Protocol):
    def emit(self, event: str, **fields: Any) -> None: ...


class EventBus:
    """Thread-safe fan-out of events to sinks (console renderer, log file)."""

    def __init__(self, *sinks: Sink) -> None:
        self._sinks = list(sinks)
        self._lock = threading.Lock()
        tee = os.environ.get(EVENTS_TEE)
        if tee:
            stream = open(Path(tee) / f"{os.getpid()}.jsonl", "a", encoding="utf-8")  # noqa: SIM115
            self._sinks.append(JsonSink(stream, owned=True))

    def add(self, sink: Sink) -> None:
        with self._lock:
            self._sinks.append(sink)

    def emit(self, event: str, **fields: Any) -> None:
        with self._lock:
            for sink in list(self._sinks):
                try:
                    sink.handle(event, fields)
                except OSError:  # e.g. stdout piped into `head`: the run goes on, the log keeps all
                    self._sinks.remove(sink)

    def close(self) -> None:
        with self._lock:
            for sink in self._sinks:
                sink.close()
            self._sinks.clear()


class JsonSink:
    """One JSON object per line: {"ts", "event", "v", ...fields} (the contract is EVENTS)."""

    def __init__(self, stream: IO[str], *, owned: bool = False) -> None:
        self.stream = stream
        self.owned = owned  # closed with the sink

    def handle(self, event: str, fields: Mapping[str, Any]) -> None:
        record = {"ts": round(time.time(), 3), "event": event, "v": EVENTS_VERSION, **fields}
        self.stream.write(json.dumps(record, default=str) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.owned:
            self.stream.close()


def _describe(event: str, f: Mapping[str, Any]) -> str | None:
    """The human line of an event, or None for events only bars show."""
    if event == "selected":
        final = f" ({f.get('final')} failed for good, left as they are)" if f.get("final") else ""
        return (
            f"{f.get('mode')} job {f.get('job')}: {f.get('total')} {f.get('unit', 'scan')}(s), "
            f"{f.get('already_done', 0)} already done, {f.get('todo')} to do{final}"
        )
    if event == "item" and f.get("status") == "failed":
        return f"scan {f.get('scan_id')} failed at {f.get('step')}: {f.get('error')}"
    if event == "batch":
        return (
            f"batch {f.get('batch')}: {f.get('done')} done, {f.get('failed')} failed "
            f"({f.get('finished')}/{f.get('total')} scans)"
        )
    if event == "retry":
        wait, attempt = f.get("wait", 0), f.get("attempt")
        return f"retrying {f.get('call')} in {wait:.1f}s (attempt {attempt}): {f.get('reason')}"
    if event == "waiting":
        return (
            f"waiting for the target to process: {f.get('processed')}/{f.get('total')} "
            f"processed ({f.get('elapsed', 0):.0f}s)"
        )
    if event == "output":
        return f"wrote {f.get('what')}: {f.get('path')}"
    if event == "warning":
        return f"warning: {f.get('message')}"
    if event == "info":
        return str(f.get("message"))
    if event in ("summary", "analysis_summary", "compare_summary", "gate"):
        return str(f.get("text"))
    return None


class PlainSink:
    """Plain lines for logs and pipes; retries only at verbose level."""

    def __init__(self, stream: IO[str], verbosity: int = 0) -> None:
        self.stream = stream
        self.verbosity = verbosity

    def handle(self, event: str, fields: Mapping[str, Any]) -> None:
        if self.verbosity < 0 and event not in (
            "warning",
            "summary",
            "analysis_summary",
            "compare_summary",
            "gate",
        ):
            return
        if event == "retry" and self.verbosity < 1:
            return
        if event == "item" and fields.get("status") == "done" and self.verbosity >= 1:
            line: str | None = f"scan {fields.get('scan_id')}: {fields.get('step')} done"
        else:
            line = _describe(event, fields)
        if line:
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        pass


class RichSink:
    """Progress bars per step on a terminal, with the plain lines printed above them."""

    def __init__(self, stream: IO[str], verbosity: int = 0) -> None:
        # lazy: rich loads only when progress is drawn on a terminal (not for --json, pipes, CI)
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = Console(file=stream)
        self.progress = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.plain = PlainSink(stream, verbosity)
        self.tasks: dict[str, Any] = {}
        self.started = False

    def _line(self, event: str, fields: Mapping[str, Any]) -> None:
        line = _describe(event, fields)
        if line and not (event == "retry" and self.plain.verbosity < 1):
            self.console.print(line, markup=False, highlight=False)

    def handle(self, event: str, fields: Mapping[str, Any]) -> None:
        if event == "plan":
            for step, total in dict(fields.get("steps", {})).items():
                if step in self.tasks:
                    self.progress.update(self.tasks[step], total=total)
                else:
                    self.tasks[step] = self.progress.add_task(step, total=total)
            if not self.started:
                self.progress.start()
                self.started = True
            return
        if event == "advance":
            task = self.tasks.get(str(fields.get("step")))
            if task is not None:
                self.progress.advance(task, int(fields.get("n", 1)))
            return
        if event == "item" and fields.get("status") in ("done", "failed", "skipped"):
            task = self.tasks.get(str(fields.get("step")))
            if task is not None:
                self.progress.advance(task, 1)
        if event in ("run_finished", "summary", "analysis_summary", "compare_summary") and self.started:
            self.progress.stop()
            self.started = False
        self._line(event, fields)

    def close(self) -> None:
        if self.started:
            self.progress.stop()
            self.started = False


class _QuietLogFile(logging.handlers.RotatingFileHandler):
    """A log file that, once a write fails (disk full), says so in one line and stops trying,
    instead of logging's traceback on stderr for every event that follows."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        if self.level <= logging.CRITICAL:
            self.setLevel(logging.CRITICAL + 1)
            error = sys.exc_info()[1]
            sys.stderr.write(
                f"scanjobs: cannot write the log {self.baseFilename} ({error}); going on without it\n"
            )


class LogSink:
    """Every event to a bounded log file beside the state (rotated at 2 MB, 3 kept)."""

    def __init__(self, path: Path) -> None:
        self.logger = logging.getLogger(f"scanjobs.run.{path}")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self.handler = _QuietLogFile(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        self.logger.addHandler(self.handler)

    def handle(self, event: str, fields: Mapping[str, Any]) -> None:
        if event == "advance":
            return
        self.logger.info("%s %s", event, json.dumps(dict(fields), default=str))

    def close(self) -> None:
        self.logger.removeHandler(self.handler)
        self.handler.close()


def make_console_sink(stream: IO[str] | None = None, *, json_lines: bool = False, verbosity: int = 0) -> Sink:
    stream = stream or sys.stdout
    if json_lines:
        return JsonSink(stream)
    if stream.isatty() and verbosity >= 0:
        return RichSink(stream, verbosity)
    return PlainSink(stream, verbosity)

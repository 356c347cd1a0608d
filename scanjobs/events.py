"""One events interface for every step: rendered as progress bars, plain lines or JSON lines."""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Protocol

__all__ = ["Events", "EventBus", "JsonSink", "PlainSink", "RichSink", "LogSink", "make_console_sink"]

# Stable event names (the `event` field of --json lines):
#   run_started    {job, mode, total, todo, already_done, final?}
#   plan           {steps: {step: total}}           totals of the progress bars
#   item           {scan_id, step, status, error?}  status: done | failed | skipped
#   batch          {batch, scans, done, failed}     every batch.size finished scans
#   retry          {call, attempt, wait, reason}
#   waiting        {processed, total, elapsed}      processed: finished (done, error or interrupted)
#   output         {what, path}
#   warning        {message}
#   summary        {counts..., elapsed, rate, hedges?: {reads, sent, won},
#                   throttled?: {instance: {decreases, pauses, lowest_rate, lowest_concurrency}}}
#   summary        (compare) {text, classes: {class: rows}, rows, scans}
#   gate           {report, verdict, text, limits: [{subject, limit, actual, scans, total, verdict,
#                   excess_scans}]}    report: analysis | compare; verdict: passed | breached
#   run_finished   {exit_code, status}


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
    """One JSON object per line: {"ts", "event", ...fields}."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def handle(self, event: str, fields: Mapping[str, Any]) -> None:
        record = {"ts": round(time.time(), 3), "event": event, **fields}
        self.stream.write(json.dumps(record, default=str) + "\n")
        self.stream.flush()

    def close(self) -> None:
        pass


def _describe(event: str, f: Mapping[str, Any]) -> str | None:
    """The human line of an event, or None for events only bars show."""
    if event == "run_started":
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
    if event in ("summary", "gate"):
        return str(f.get("text"))
    return None


class PlainSink:
    """Plain lines for logs and pipes; retries only at verbose level."""

    def __init__(self, stream: IO[str], verbosity: int = 0) -> None:
        self.stream = stream
        self.verbosity = verbosity

    def handle(self, event: str, fields: Mapping[str, Any]) -> None:
        if self.verbosity < 0 and event not in ("warning", "summary", "gate"):
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
        if event in ("run_finished", "summary") and self.started:
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

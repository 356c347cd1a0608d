"""The outcome layer every item mode shares: which work a run takes, how its items ended, the summary.

Copy and download differ in what an item is (a scan, a file) and in how it moves; they agree in
everything here: new work left for later by --limit or --retry-failed, the tally of done and
failed items with the failure window (batch.max_failed_ratio), the errors that stop the whole
run (a refused login, a state that cannot be written), the warning for ids the source does not
have, and the summary's wording.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from scanjobs.errors import AuthError, StateError
from scanjobs.events import Events
from scanjobs.modes.base import RunOptions, RunResult, StopSignal

__all__ = ["FailureWindow", "Batch", "Tally", "take_new", "warn_not_found", "error_text", "summary_tail"]

T = TypeVar("T")

DEFAULT_BATCH = 10  # items a batch holds when the job gives no batch.size (a download's)

# Errors that end the whole run, not one item: a refused login, a state that cannot be written
# (going on would do work that no record remembers).
FATAL = (AuthError, StateError)


def take_new(new: Sequence[T], options: RunOptions) -> tuple[list[T], int]:
    """The new items this run takes, and how many it leaves for a later run.

    --retry-failed takes none (it only retries); --limit N takes the first N.
    """
    if options.retry_failed:
        return [], len(new)
    if options.limit is not None:
        return list(new[: options.limit]), max(0, len(new) - options.limit)
    return list(new), 0


class FailureWindow:
    """The share of failures among the last `size` finished items (batch.max_failed_ratio)."""

    def __init__(self, size: int, max_ratio: float) -> None:
        self.recent: collections.deque[bool] = collections.deque(maxlen=size)
        self.max_ratio = max_ratio

    def record(self, failed: bool) -> None:
        self.recent.append(failed)

    def exceeded(self) -> bool:
        if len(self.recent) < (self.recent.maxlen or 1) or self.max_ratio >= 1:
            return False
        return sum(self.recent) / len(self.recent) > self.max_ratio

    def describe(self) -> str:
        return (
            f"{sum(self.recent)} of the last {len(self.recent)} scans failed "
            f"(batch.max_failed_ratio {self.max_ratio})"
        )


@dataclass(frozen=True, slots=True)
class Batch:
    """A batch of `batch.size` finished items closed (the progress unit of copy)."""

    number: int
    done: int
    failed: int
    finished: int


def error_text(error: BaseException) -> str:
    """`Class: first line of the message`, as items and failure reports show an error."""
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"{type(error).__name__}: {message}"


class Tally:
    """How the items of one run ended, counted from many threads at once.

    A FATAL error (a refused login, a state that cannot be written) ends the run: the first one
    is kept, the run is asked to stop, and `raise_fatal()` raises it once the items in flight
    have ended.
    """

    def __init__(
        self, total: int, *, batch_size: int | None, max_failed_ratio: float, stop: StopSignal
    ) -> None:
        self.total = total
        self.max_failed_ratio = max_failed_ratio
        self.resize(batch_size or DEFAULT_BATCH)
        self.stop = stop
        self.done = 0
        self.failed = 0
        self.failures_by_class: dict[str, int] = {}
        self.fatal: BaseException | None = None
        self._finished = 0
        self._batch = 0
        self._batch_done = 0
        self._batch_failed = 0
        self._lock = threading.Lock()

    def resize(self, batch_size: int) -> None:
        """The batch (progress unit and failure window) once known: a copy's default size
        follows from its scans' files, known only after they are read. Before any item ends."""
        self.batch_size = batch_size
        self.window = FailureWindow(batch_size, self.max_failed_ratio)

    def record(self, error: BaseException | None) -> Batch | None:
        """Count one finished item; the batch it closed, if it closed one."""
        if isinstance(error, FATAL):
            with self._lock:
                self.fatal = self.fatal or error
            self.stop.request("fatal")
        with self._lock:
            self._finished += 1
            self.window.record(error is not None)
            if error is None:
                self.done += 1
                self._batch_done += 1
            else:
                self.failed += 1
                self._batch_failed += 1
                name = type(error).__name__
                self.failures_by_class[name] = self.failures_by_class.get(name, 0) + 1
            if self._batch_done + self._batch_failed < self.batch_size and self._finished != self.total:
                return None
            self._batch += 1
            batch = Batch(self._batch, self._batch_done, self._batch_failed, self._finished)
            self._batch_done = self._batch_failed = 0
            return batch

    def should_stop(self) -> bool:
        return self.stop.requested or self.window.exceeded()

    def raise_fatal(self, only: type[BaseException] | tuple[type[BaseException], ...] = FATAL) -> None:
        if isinstance(self.fatal, only):
            raise self.fatal

    def into(self, result: RunResult) -> RunResult:
        """Add what was counted to `result` (which may hold failures found before any item ran)."""
        result.done += self.done
        result.failed += self.failed
        for name, n in self.failures_by_class.items():
            result.failures_by_class[name] = result.failures_by_class.get(name, 0) + n
        result.threshold_stop = result.threshold_stop or self.window.exceeded()
        return result


def warn_not_found(events: Events, missing: Sequence[int], source: str) -> None:
    if missing:
        events.emit(
            "warning",
            message=f"{len(missing)} scan id(s) not found on {source}: {', '.join(map(str, missing[:20]))}",
        )


def summary_tail(
    result: RunResult, *, deferred: int, window: FailureWindow, options: RunOptions
) -> tuple[str, str]:
    """The parts every summary shares: ' (n Class, ...)' after the failed count, and the lines
    that follow (permanent failures, scans left for --limit, an early stop)."""
    failed = ", ".join(f"{n} {c}" for c, n in sorted(result.failures_by_class.items()))
    after = ""
    if result.permanent:
        after += f"; {result.permanent} permanent (a plain rerun leaves them; --retry-failed retries them)"
        if options.accept_permanent and result.permanent == result.failed:
            after += ", accepted (--accept-permanent)"
    if deferred:
        after += f"; {deferred} new scan(s) left for the next run (--limit)"
    if result.threshold_stop:
        after += f"\nstopped early: {window.describe()}; fix the cause and rerun to go on"
    return (f" ({failed})" if failed else ""), after

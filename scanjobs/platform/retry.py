"""Retry policy for platform calls: tenacity, full-jitter backoff, Retry-After, a deadline."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timezone
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from scanjobs.errors import TransientError, UnreachableError

__all__ = [
    "SLOWEST_RATE",
    "RetryPolicy",
    "Timeouts",
    "RetryEvent",
    "RetryableFailure",
    "OnRetry",
    "parse_retry_after",
    "call_with_retry",
]

T = TypeVar("T")

# Bytes per second that an attempt moving a file of known size is granted on top of
# `Timeouts.total`: a large file on a slow link is not cut off for its size alone.
SLOWEST_RATE = 128 * 1024


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long a transient failure is retried (seconds throughout)."""

    attempts: int = 4
    initial: float = 1.0
    max: float = 60.0
    multiplier: float = 2.0
    jitter: bool = True
    deadline: float | None = 1800.0
    retry_after_cap: float = 60.0


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Timeouts of one HTTP attempt, in seconds: to connect, to wait for the next bytes, and in
    all (`total`: the wall-clock limit, connect to the body's last byte; the read timeout alone
    lets a server that sends a byte now and then hold a request forever)."""

    connect: float = 10.0
    read: float = 120.0
    total: float = 300.0

    def limit(self, size: int | None = None) -> float:
        """The wall-clock limit of one attempt that moves `size` bytes (a body or a file)."""
        return self.total + (size or 0) / SLOWEST_RATE


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """Passed to `on_retry` before each sleep: `attempt` is the attempt that just failed."""

    attempt: int
    wait: float
    reason: str
    call: str


OnRetry = Callable[[RetryEvent], None]


class RetryableFailure(Exception):
    """Raised inside one attempt for a failure worth another try; never escapes call_with_retry.

    `connection` marks failures where no HTTP answer came back (refused, reset, DNS): when those
    outlive the retries the platform is unreachable, not merely flaky for one item.
    """

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        connection: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.connection = connection


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 7231 dates are GMT; a naive parse means the zone was omitted
        when = when.replace(tzinfo=timezone.utc)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


class _Wait:
    """Backoff (full jitter unless disabled), but never shorter than the server's Retry-After."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        backoff_cls = wait_random_exponential if policy.jitter else wait_exponential
        self._backoff = backoff_cls(multiplier=policy.initial, max=policy.max, exp_base=policy.multiplier)

    def __call__(self, state: RetryCallState) -> float:
        wait = float(self._backoff(state))
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableFailure) and exc.retry_after is not None:
            wait = max(wait, min(exc.retry_after, self._policy.retry_after_cap))
        return wait


class _StopBeforeDeadline(stop_base):
    """Refuse a sleep that would carry the next try past `deadline` seconds after `started`."""

    def __init__(self, deadline: float, started: float) -> None:
        self.deadline = deadline
        self.started = started

    def __call__(self, retry_state: RetryCallState) -> bool:
        return time.monotonic() - self.started + retry_state.upcoming_sleep >= self.deadline


def _stop(policy: RetryPolicy, started: float) -> stop_base:
    attempts = stop_after_attempt(max(1, policy.attempts))
    if policy.deadline is None:
        return attempts
    return attempts | _StopBeforeDeadline(policy.deadline, started)


def call_with_retry(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    call: str,
    target: str,
    on_retry: OnRetry | None = None,
) -> T:
    """Run `fn`, retrying while it raises RetryableFailure; other exceptions pass through at once.

    When the retries run out: UnreachableError if the last failure was connection-level,
    else TransientError. `call` names the request in messages ("POST /api/v4/processing/upload/"),
    `target` is the base URL shown in "cannot reach ..." (never carries credentials).
    """
    started = time.monotonic()
    try:
        return fn()  # the common case: one attempt, and no retry machinery to build for it
    except RetryableFailure as exc:
        failures = [exc]

    def attempt() -> T:
        # The first failure is handed to tenacity as its attempt 1, so attempt counts, waits and
        # messages are as if tenacity had made that call itself; the deadline counts from `started`.
        if failures:
            raise failures.pop()
        return fn()

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is None:
            return
        exc = state.outcome.exception() if state.outcome else None
        reason = exc.reason if isinstance(exc, RetryableFailure) else repr(exc)
        wait = state.next_action.sleep if state.next_action else 0.0
        on_retry(RetryEvent(attempt=state.attempt_number, wait=wait, reason=reason, call=call))

    def give_up(state: RetryCallState) -> T:
        exc = state.outcome.exception() if state.outcome else None
        assert isinstance(exc, RetryableFailure)
        tries = f"{state.attempt_number} attempt{'s' if state.attempt_number != 1 else ''}"
        if exc.connection:
            raise UnreachableError(
                f"cannot reach {target} : {exc.reason} ({call}, gave up after {tries})"
            ) from exc
        raise TransientError(f"{call} failed after {tries}: {exc.reason}", status=exc.status) from exc

    retrying = Retrying(
        retry=retry_if_exception_type(RetryableFailure),
        stop=_stop(policy, started),
        wait=_Wait(policy),
        before_sleep=before_sleep,
        retry_error_callback=give_up,
    )
    return retrying(attempt)

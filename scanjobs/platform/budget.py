"""A per-instance request budget: requests per second and requests at once, across all endpoints.

An instance's `limits` (instances.NAME.limits) bound every request scanjobs sends it, whatever
the call (login, file metadata, storage downloads, uploads, creates, polls, retries and hedges):
- `requests_per_second`: requests are spaced at least 1 / rate apart (plus SPACING_GUARD), so
  no second, as the platform counts them after the network's jitter, sees more than the rate;
- `concurrent_requests`: at most that many requests are on the wire at once (a streamed download
  holds its place until its body is read).

With `adaptive` (the default) the platform's pushback lowers them, additive increase and
multiplicative decrease as TCP does: a 429, or DECREASE_503S 503s within a second, halves the
current rate and concurrency (at most once per COOLDOWN seconds, so one burst halves them once);
each second without pushback adds a tenth of the configured rate and one request at once, up to
the configured values. A `Retry-After` on a 429 or 503 pauses every new request to the instance
until it has passed (capped by the job's `retry.backoff.max`), not only the call that got it.

Without `limits` an instance gets no budget: scanjobs sends as fast as its workers allow, and a
429 or 503 delays only the call that received it (by its Retry-After).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Limits", "RequestBudget", "BudgetCounts", "SPACING_GUARD", "COOLDOWN", "DECREASE_503S"]

# Requests are spaced this much wider than 1 / rate: a request may reach the platform a little
# later than the one sent after it, and the platform must still never count more than the rate.
SPACING_GUARD = 0.05
COOLDOWN = 1.0  # seconds between two decreases, and from a decrease to the next increase
DECREASE_503S = 2  # 503s within a second that count as pushback (one alone may be a blip)
MIN_RATE_SHARE = 1 / 64  # the rate never falls below this share of the configured one


@dataclass(frozen=True, slots=True)
class Limits:
    """An instance's request limits as the job gives them (None: not limited)."""

    requests_per_second: float | None = None
    concurrent_requests: int | None = None
    adaptive: bool = True


@dataclass(frozen=True, slots=True)
class BudgetCounts:
    """What the budget did: decreases (pushback), pauses (Retry-After) and the lowest values."""

    decreases: int = 0
    pauses: int = 0
    lowest_rate: float | None = None
    lowest_concurrency: int | None = None


Release = Callable[[], None]


class RequestBudget:
    """The budget of one instance (see the module's docstring). Thread-safe."""

    def __init__(
        self,
        limits: Limits,
        *,
        retry_after_cap: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limits.requests_per_second is not None and not limits.requests_per_second > 0:
            raise ValueError("requests_per_second must be more than 0")
        if limits.concurrent_requests is not None and limits.concurrent_requests < 1:
            raise ValueError("concurrent_requests must be at least 1")
        self.limits = limits
        self._cap = retry_after_cap
        self._clock = clock
        self._sleep = sleep
        self._cond = threading.Condition()
        self._rate = limits.requests_per_second
        self._concurrency: float | None = (
            None if limits.concurrent_requests is None else float(limits.concurrent_requests)
        )
        self._in_flight = 0
        self._next_free = 0.0  # the clock time the next request may go out at
        self._paused_until = 0.0
        self._last_change = -COOLDOWN  # the last decrease or increase
        self._last_decrease = -COOLDOWN
        self._recent_503s: deque[float] = deque()
        self._decreases = self._pauses = 0
        self._lowest_rate = self._rate
        self._lowest_concurrency = limits.concurrent_requests

    # -- sending ---------------------------------------------------------------------------------

    def enter(self) -> Release:
        """Wait until one more request may go out (the pause, the concurrency, then the rate);
        the returned function gives its place back when the request is over (call it once)."""
        with self._cond:
            while self._concurrency is not None and self._in_flight >= max(1, int(self._concurrency)):
                self._cond.wait()
            self._in_flight += 1
        try:
            self.pace()
        except BaseException:
            self._release()
            raise
        return self._release

    def try_enter(self) -> Release | None:
        """`enter` if a request may go out right now, else None (a hedge is not worth a wait)."""
        with self._cond:
            now = self._clock()
            full = self._concurrency is not None and self._in_flight >= max(1, int(self._concurrency))
            if full or now < self._paused_until or (self._rate is not None and now < self._next_free):
                return None
            self._in_flight += 1
            self._reserve(now)
        return self._release

    def pace(self) -> None:
        """Wait for the rate (and any pause) only: one more request of an attempt that already
        holds its place (a redirect's next hop)."""
        while True:
            with self._cond:
                now = self._clock()
                reserved = now >= self._paused_until
                if reserved:
                    wait = self._reserve(now) - now
                    if wait <= 0:
                        return
                else:
                    wait = self._paused_until - now
            self._sleep(wait)
            if reserved:
                with self._cond:
                    if self._clock() >= self._paused_until:
                        return  # the reserved time has come, and no pause began meanwhile

    def _reserve(self, now: float) -> float:
        """Take the next free send time (the caller holds the lock); when it is."""
        if self._rate is None:
            return now
        at = max(self._next_free, now)
        self._next_free = at + (1 + SPACING_GUARD) / self._rate
        return at

    def _release(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify()

    # -- the platform's answers -----------------------------------------------------------------

    def observe(self, status: int, retry_after: float | None = None) -> None:
        """Every answer's status (and Retry-After, in seconds): pushback lowers the budget, a
        Retry-After pauses it, and calm raises it back towards the limits."""
        if not self.limits.adaptive:
            return
        with self._cond:
            now = self._clock()
            if status in (429, 503) and retry_after is not None and retry_after > 0:
                until = now + min(retry_after, self._cap)
                if until > self._paused_until:
                    self._paused_until = until
                    self._pauses += 1
            if status == 429 or (status == 503 and self._burst_of_503s(now)):
                self._decrease(now)
            elif status < 400 and now - self._last_change >= COOLDOWN:
                self._increase(now)

    def _burst_of_503s(self, now: float) -> bool:
        recent = self._recent_503s
        recent.append(now)
        while recent and now - recent[0] > 1.0:
            recent.popleft()
        return len(recent) >= DECREASE_503S

    def _decrease(self, now: float) -> None:
        if now - self._last_decrease < COOLDOWN:
            return
        self._last_change = self._last_decrease = now
        self._decreases += 1
        configured = self.limits
        if self._rate is not None and configured.requests_per_second is not None:
            self._rate = max(configured.requests_per_second * MIN_RATE_SHARE, self._rate / 2)
            self._lowest_rate = min(self._lowest_rate or self._rate, self._rate)
            # the spacing already promised stands; later requests get the wider one
        if self._concurrency is not None:
            self._concurrency = max(1.0, self._concurrency / 2)
            low = int(self._concurrency)
            self._lowest_concurrency = min(self._lowest_concurrency or low, low)

    def _increase(self, now: float) -> None:
        configured, rate, concurrency = self.limits, self._rate, self._concurrency
        raised = False
        top_rate = configured.requests_per_second
        if rate is not None and top_rate is not None and rate < top_rate:
            self._rate = min(top_rate, rate + top_rate / 10)
            raised = True
        top = configured.concurrent_requests
        if concurrency is not None and top is not None and concurrency < top:
            self._concurrency = min(float(top), concurrency + 1)
            self._cond.notify_all()
            raised = True
        if raised:
            self._last_change = now

    # -- what it did ----------------------------------------------------------------------------

    @property
    def rate(self) -> float | None:
        """Requests per second allowed now (None: not limited)."""
        with self._cond:
            return self._rate

    @property
    def concurrency(self) -> int | None:
        """Requests at once allowed now (None: not limited)."""
        with self._cond:
            return None if self._concurrency is None else max(1, int(self._concurrency))

    @property
    def counts(self) -> BudgetCounts:
        with self._cond:
            return BudgetCounts(self._decreases, self._pauses, self._lowest_rate, self._lowest_concurrency)

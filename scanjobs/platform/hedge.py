"""Hedged reads: a second, identical request for a read that is slower than nearly all recent ones.

"The Tail at Scale" (Dean & Barroso, CACM 2013): a request still unanswered after a high
percentile of its endpoint's recent latency is most likely stuck (a lost packet, a slow disk, a
hung worker), and a second copy sent then usually answers long before the first would. The first
answer wins and the other is cancelled. Only idempotent GETs are hedged, before their answer's
headers arrive (file metadata; a file download before its first byte): a hedge never writes.

`Hedge` is one endpoint's record: its recent latencies, the delay after which a read is hedged
(the HEDGE_PERCENTILE of the last LATENCY_SAMPLES answers, once MIN_SAMPLES are known; before
that a cautious INITIAL_DELAY, so a read hung among the first ones is not left to its timeout),
and a budget that bounds hedges to HEDGE_SHARE of its reads (tokens earned per read, at most
BURST saved up, one at the start), so a platform slow for everyone is never sent twice its load.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = [
    "Hedge",
    "HedgeCounts",
    "HEDGE_PERCENTILE",
    "HEDGE_SHARE",
    "LATENCY_SAMPLES",
    "MIN_SAMPLES",
    "MIN_DELAY",
]

HEDGE_PERCENTILE = 0.99  # a read slower than 99% of its endpoint's recent reads is hedged
HEDGE_SHARE = 0.03  # at most 3 hedges per 100 reads (plus BURST saved up)
BURST = 5.0  # hedges that may go out at once, when the budget has saved them up
LATENCY_SAMPLES = 512  # the recent answers the percentile is taken over
MIN_SAMPLES = 50  # no hedging before this many answers: the percentile means nothing yet
MIN_DELAY = 0.02  # seconds: never hedge sooner, however fast the endpoint (loopback, caches)
INITIAL_DELAY = 1.0  # seconds: the delay while fewer than MIN_SAMPLES answers are known
RECOMPUTE_EVERY = 32  # answers between two computations of the percentile


@dataclass(frozen=True, slots=True)
class HedgeCounts:
    """Reads of an endpoint (first requests), hedges sent, and hedges whose answer was used."""

    reads: int = 0
    sent: int = 0
    won: int = 0

    def __add__(self, other: HedgeCounts) -> HedgeCounts:
        return HedgeCounts(self.reads + other.reads, self.sent + other.sent, self.won + other.won)


class Hedge:
    """One endpoint's latency record and hedge budget. Thread-safe."""

    def __init__(
        self,
        *,
        percentile: float = HEDGE_PERCENTILE,
        share: float = HEDGE_SHARE,
        burst: float = BURST,
        samples: int = LATENCY_SAMPLES,
        min_samples: int = MIN_SAMPLES,
        min_delay: float = MIN_DELAY,
        initial_delay: float | None = INITIAL_DELAY,
    ) -> None:
        self._percentile = percentile
        self._share = share
        self._burst = burst
        self._samples: list[float] = []
        self._size = samples
        self._next = 0  # where the next sample goes once the ring is full
        self._min_samples = min_samples
        self._min_delay = min_delay
        self._since = 0  # samples since the delay was computed
        self._delay: float | None = initial_delay
        self._known = False  # whether _delay comes from MIN_SAMPLES answers
        self._tokens = min(1.0, burst)
        self._reads = self._sent = self._won = 0
        self._lock = threading.Lock()

    def delay(self) -> float | None:
        """Seconds after which the read starting now is hedged (None: it is not). Counts the read
        and earns its share of the budget."""
        with self._lock:
            self._reads += 1
            self._tokens = min(self._burst, self._tokens + self._share)
            return self._delay

    def take(self) -> bool:
        """Spend one hedge from the budget: False when it is spent (the read is not hedged)."""
        with self._lock:
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            self._sent += 1
            return True

    def won(self) -> None:
        """A hedge's answer came first and was used."""
        with self._lock:
            self._won += 1

    def record(self, seconds: float) -> None:
        """A read's answer (its headers) came `seconds` after it was sent."""
        with self._lock:
            if len(self._samples) < self._size:
                self._samples.append(seconds)
            else:
                self._samples[self._next] = seconds
                self._next = (self._next + 1) % self._size
            self._since += 1
            if len(self._samples) >= self._min_samples and (
                not self._known or self._since >= RECOMPUTE_EVERY
            ):
                self._since, self._known = 0, True
                ordered = sorted(self._samples)
                at = min(len(ordered) - 1, int(self._percentile * len(ordered)))
                self._delay = max(self._min_delay, ordered[at])

    @property
    def counts(self) -> HedgeCounts:
        with self._lock:
            return HedgeCounts(self._reads, self._sent, self._won)

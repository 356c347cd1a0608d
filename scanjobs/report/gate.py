"""The quality gate: does a report stay within the job's limits (pure; counted in scans, not rows).

A limit names a subject (an analysis comment, or a compare class) and allows at most a count of
scans, or at most a share of the scans, that have at least one row of that subject. A scan
counts once per subject however many of its rows have it, since users read the figures as scans.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scanjobs.jobfile.model import Gate, GateLimit

__all__ = ["LimitVerdict", "GateVerdict", "judge"]


@dataclass(frozen=True, slots=True)
class LimitVerdict:
    """One limit against what the report holds."""

    limit: GateLimit
    scans: int  # scans with the subject
    total: int  # scans in the report

    @property
    def share(self) -> float:
        return self.scans / self.total if self.total else 0.0

    @property
    def allowed(self) -> int:
        """The most scans the limit allows in this report."""
        if self.limit.count is not None:
            return self.limit.count
        assert self.limit.share is not None  # GateLimit holds one of them
        return math.floor(self.limit.share * self.total + 1e-9)

    @property
    def breached(self) -> bool:
        if self.limit.count is not None:
            return self.scans > self.limit.count
        assert self.limit.share is not None
        return self.share > self.limit.share + 1e-12

    def actual(self) -> str:
        """What the report holds, in the limit's terms: a count, or a share like `13.3%`."""
        return f"{self.share * 100:.1f}%" if self.limit.share is not None else str(self.scans)

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.limit.subject,
            "limit": self.limit.describe(),
            "actual": self.actual(),
            "scans": self.scans,
            "total": self.total,
            "verdict": "breached" if self.breached else "ok",
            "excess_scans": max(0, self.scans - self.allowed),
        }

    def describe(self) -> str:
        head = f"{self.limit.subject}: {self.scans} of {self.total} scans ({self.share * 100:.1f}%)"
        if not self.breached:
            return f"{head}, within {self.limit.describe()}"
        over = self.scans - self.allowed
        by = f"{over} scan(s) over"
        if self.limit.share is not None:
            by += f", {(self.share - self.limit.share) * 100:.1f} points"
        return f"{head}, limit {self.limit.describe()}: {by}"


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """Every limit of a gate against one report."""

    limits: tuple[LimitVerdict, ...]
    what: str  # the report judged, e.g. "analysis" or "compare"

    @property
    def breached(self) -> bool:
        return any(v.breached for v in self.limits)

    @property
    def verdict(self) -> str:
        return "breached" if self.breached else "passed"

    def describe(self) -> str:
        """One line: the verdict, then each limit (the breached ones first)."""
        ordered = sorted(self.limits, key=lambda v: not v.breached)
        return f"gate {self.verdict} ({self.what}): " + "; ".join(v.describe() for v in ordered)

    def as_event(self) -> dict[str, Any]:
        """The fields of the `gate` event."""
        return {
            "report": self.what,
            "verdict": self.verdict,
            "text": self.describe(),
            "limits": [v.as_dict() for v in self.limits],
        }


def judge(gate: Gate, scans: Mapping[str, int], total: int, what: str) -> GateVerdict:
    """Each limit of `gate` against `scans` (subject -> scans with it) out of `total` scans."""
    return GateVerdict(
        tuple(LimitVerdict(limit, scans.get(limit.subject, 0), total) for limit in gate.limits), what
    )

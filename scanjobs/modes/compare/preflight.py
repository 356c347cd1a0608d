"""`scanjobs plan` for a compare job: where each side's analysis is, and the gate."""

from __future__ import annotations

import functools

from scanjobs.jobfile.model import CompareJob
from scanjobs.modes.base import PlanReport
from scanjobs.modes.compare.sides import resolve_side
from scanjobs.modes.preflight import Preflight

__all__ = ["preflight_compare"]


def preflight_compare(job: CompareJob) -> PlanReport:
    pf = Preflight(job)
    for role, given in (("baseline", job.compare.baseline), ("candidate", job.compare.candidate)):
        side = pf.check(role, functools.partial(resolve_side, role, given))
        if side is not None:
            pf.note(f"{role}: {side.analysis}")
    for limit in job.compare.gate.limits:
        pf.note(f"gate: at most {limit.describe()} scan(s) {limit.subject.replace('_', ' ')}")
    pf.report.would = (
        f"a run would compare the two analyses and write compare.csv and compare.xlsx into {job.output}"
    )
    return pf.report

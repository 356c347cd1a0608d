"""One run of a compare job: read both analyses, compare them, write the reports, judge the gate.

Nothing is resumed: a compare is quick, so every run computes it whole from the analyses as
they are now (the state records the runs only).
"""

from __future__ import annotations

from scanjobs.errors import JobError
from scanjobs.jobfile.model import CompareJob
from scanjobs.modes.base import RunContext, RunResult
from scanjobs.modes.compare.sides import resolve_side
from scanjobs.modes.gate import apply_gate

__all__ = ["CompareRun", "COMPARE_CSV", "COMPARE_XLSX"]

COMPARE_CSV = "compare.csv"
COMPARE_XLSX = "compare.xlsx"


class CompareRun:
    """One execution of a compare job."""

    def __init__(self, ctx: RunContext, job: CompareJob) -> None:
        self.ctx, self.job = ctx, job

    def run(self) -> RunResult:
        # here, not at the top: the reports need pandas, which the other modes load only later
        from scanjobs.report import write_csv
        from scanjobs.report.compare import build_compare, class_counts, read_analysis
        from scanjobs.report.compare_excel import write_compare_excel

        job, events = self.job, self.ctx.events
        sides = [
            resolve_side("baseline", job.compare.baseline),
            resolve_side("candidate", job.compare.candidate),
        ]
        frames = []
        for side in sides:
            try:
                frames.append(read_analysis(side.analysis))
            except ValueError as exc:
                raise JobError(f"compare.{side.role}: {exc}") from None
        scans = len(set(frames[0]["source_scan_id"].dropna()) | set(frames[1]["source_scan_id"].dropna()))
        events.emit("selected", job=job.name, mode="compare", total=scans, todo=scans, already_done=0)
        compare = build_compare(frames[0], frames[1])
        job.output.mkdir(parents=True, exist_ok=True)
        csv_path, xlsx_path = job.output / COMPARE_CSV, job.output / COMPARE_XLSX
        write_csv(compare, csv_path)
        write_compare_excel(compare, xlsx_path, {s.role.capitalize(): s.describe() for s in sides})
        events.emit("output", what="compare CSV", path=str(csv_path))
        events.emit("output", what="compare Excel report", path=str(xlsx_path))
        counts = class_counts(compare)
        text = "compare: " + ", ".join(f"{n} {c.replace('_', ' ')}" for c, n in counts.items() if n)
        events.emit("compare_summary", text=text, classes=counts, rows=len(compare), scans=scans)
        result = RunResult(done=scans, extra={"classes": counts})
        if job.compare.gate:
            apply_gate(job.compare.gate, compare, "class", "compare", events, result)
        return result

"""A run's quality gate: judge the report the run wrote, say the verdict, and mark the result."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scanjobs.events import Events
from scanjobs.jobfile.model import AnalyzeJob, CopyJob, Gate
from scanjobs.modes.base import RunResult

if TYPE_CHECKING:  # pandas loads with the reports, not with every run's start-up
    import pandas as pd

__all__ = ["apply_gate", "apply_analysis_gate"]


def apply_gate(
    gate: Gate, report: pd.DataFrame, column: str, what: str, events: Events, result: RunResult
) -> None:
    """Judge `report` (rows with a `source_scan_id` and `column`, the subject of each limit)."""
    # here, not at the top: the gate needs pandas, which copy and download load only for reports
    from scanjobs.report.figures import scans_per_value
    from scanjobs.report.gate import judge

    scans, total = scans_per_value(report, column)
    verdict = judge(gate, scans, total, what)
    events.emit("gate", **verdict.as_event())
    result.gate_breached = result.gate_breached or verdict.breached
    result.extra["gate"] = verdict.verdict
    result.gate_text = verdict.as_event()["text"]


def apply_analysis_gate(job: CopyJob | AnalyzeJob, events: Events, result: RunResult) -> None:
    """The `analysis.gate` of a job, judging the analysis in its output: the one this run wrote,
    or the one an earlier run wrote for the same pairs (a copy job does not write it again)."""
    if not job.analysis.gate:
        return
    from scanjobs.report import ReportPaths  # pandas, as above
    from scanjobs.report.compare import read_analysis

    path = ReportPaths.in_folder(job.output).analysis_csv
    if not path.is_file():  # nothing was analysed (no scan copied): a gate never passes blind
        text = f"gate breached (analysis): there is no analysis to judge ({path} was not written)"
        events.emit("gate", report="analysis", verdict="breached", text=text, limits=[])
        result.gate_breached = True
        result.extra["gate"] = "breached"
        result.gate_text = text
        return
    apply_gate(job.analysis.gate, read_analysis(path), "comment", "analysis", events, result)

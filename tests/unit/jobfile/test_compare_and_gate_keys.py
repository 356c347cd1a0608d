"""mode compare and the gates in job files: what the loader accepts, refuses, and the schema lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanjobs.cli import main
from scanjobs.errors import JobError
from scanjobs.jobfile import CompareJob, load_job, load_schema
from scanjobs.jobfile.model import Gate, GateLimit
from scanjobs.report.compare import CompareClass
from scanjobs.report.rules import Comment


def job(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text("version: 1\n" + text, encoding="utf-8")
    return path


def test_the_schema_lists_every_comment_and_class_as_a_gate_key() -> None:
    props = load_schema()["properties"]
    assert list(props["analysis"]["properties"]["gate"]["properties"]) == [c.text for c in Comment]
    assert set(props["compare"]["properties"]["gate"]["properties"]) == {c.text for c in CompareClass}


def test_a_compare_job_loads_without_any_instance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = job(
        tmp_path,
        "mode: compare\ncompare:\n  baseline: a.yaml\n  candidate: results/b\n"
        "  gate: {regressed: 0, not_comparable: '2.5%'}\n",
    )
    loaded = load_job(path, environ={})
    assert isinstance(loaded, CompareJob) and loaded.instances() == ()
    assert loaded.compare.baseline == tmp_path / "a.yaml"
    assert loaded.compare.candidate == tmp_path / "results" / "b"
    assert loaded.compare.gate == Gate(
        (GateLimit("regressed", count=0), GateLimit("not_comparable", share=0.025))
    )
    assert loaded.output == tmp_path / "results" / "job"
    assert main(["validate", str(path)]) == 0
    assert "mode compare" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("mode: compare\n", "'compare' is a required property"),
        (
            "mode: compare\nsource: a\ncompare: {baseline: a, candidate: b}\n",
            "source (job.yaml, line 3): mode compare",
        ),
        ("mode: compare\ncompare: {baseline: a, candidate: a}\n", "the candidate is the baseline"),
        (
            "mode: compare\ncompare: {baseline: a, candidate: b, gate: {regressed: '101%'}}\n",
            "more than 100%",
        ),
        (
            "mode: compare\ncompare: {baseline: a, candidate: b, gate: {regressed: -1}}\n",
            "is not a gate limit",
        ),
        ("mode: compare\ncompare: {baseline: a, candidate: b, gate: {worse: 1}}\n", "unknown key 'worse'"),
        (
            "mode: copy\nsource: a\ntarget: {instance: a, store: 1}\nscans: {ids: [1]}\n"
            "analysis: {enabled: false, gate: {No Issues: 1}}\n",
            "a gate judges the analysis, which this job turns off",
        ),
        (
            "mode: copy\nsource: a\ntarget: {instance: a, store: 1}\nscans: {ids: [1]}\n"
            "compare: {baseline: a, candidate: b}\n",
            "compare is for mode compare",
        ),
        (
            "mode: copy\nsource: a\ntarget: {instance: a, store: 1}\nscans: {ids: [1]}\n"
            "analysis: {gate: {Wrong POG Name Maping: 1}}\n",
            "unknown key 'Wrong POG Name Maping' (did you mean 'Wrong POG Name Mapping'?)",
        ),
    ],
)
def test_refused(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(JobError, match="is not a valid job file") as caught:
        load_job(job(tmp_path, text + "instances: {a: {}}\n"), environ={})
    assert problem in str(caught.value)


def test_an_analysis_gate_takes_counts_and_shares(tmp_path: Path) -> None:
    text = (
        "mode: analyze\nsource: a\ntarget: {instance: a}\nscans: {pairs: p.csv}\ninstances: {a: {}}\n"
        "analysis: {gate: {Wrong POG Name Mapping: '5%', Target Report Missing: 3}}\n"
    )
    loaded = load_job(job(tmp_path, text), environ={})
    assert loaded.analysis.gate.limit("Wrong POG Name Mapping") == GateLimit(
        "Wrong POG Name Mapping", share=0.05
    )
    assert loaded.analysis.gate.limit("Target Report Missing") == GateLimit("Target Report Missing", count=3)
    assert [limit.describe() for limit in loaded.analysis.gate.limits] == ["5%", "3"]

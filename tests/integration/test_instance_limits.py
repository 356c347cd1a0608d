"""An instance's request budget, as the platform counts it (issue 14, point 3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from copy_support import assert_copied, write_copy_job

from scanjobs.cli import main
from scanjobs.sandbox import Sandbox

pytestmark = pytest.mark.integration


def limit(folder: Path, instance: str, **limits: Any) -> None:
    """Give `instance` of the instances.yaml in `folder` these limits."""
    path = folder / "instances.yaml"
    instances = yaml.safe_load(path.read_text(encoding="utf-8"))
    instances[instance]["limits"] = limits
    path.write_text(yaml.safe_dump(instances, sort_keys=False), encoding="utf-8")


def summary(out: str) -> dict[str, Any]:
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return next(e for e in events if e["event"] == "summary")


def test_a_copy_told_10_requests_a_second_never_sends_more(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unlimited, this copy sends its ~40 source requests within a second or two; limited to 10
    a second, the sandbox counts at most 10 in each second, and the copy still completes."""
    store, ids = sandbox.new_target_store(), sandbox.info["source_scan_ids"][:6]
    job = write_copy_job(tmp_path, sandbox, store=store, scan_ids=ids)
    limit(tmp_path, "sandbox-source", requests_per_second=10)
    capsys.readouterr()
    assert main(["plan", str(job)]) == 0
    assert "sandbox-source is limited to 10 requests/s over all its requests" in capsys.readouterr().out
    sandbox.reset_stats()
    assert main(["run", str(job), "--json"]) == 0
    stats = sandbox.stats("source")
    assert stats["requests_total"] > 30, stats  # enough requests for the limit to matter
    assert stats["max_per_second"] <= 10, stats["per_second"]
    assert_copied(sandbox, job, store, ids)
    assert "throttled" in summary(capsys.readouterr().out)  # the summary reports the budget


def test_concurrency_and_rate_limits_on_both_instances_still_copy(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, ids = sandbox.new_target_store(), sandbox.info["source_scan_ids"][6:9]
    job = write_copy_job(tmp_path, sandbox, store=store, scan_ids=ids)
    limit(tmp_path, "sandbox-source", concurrent_requests=1)
    limit(tmp_path, "sandbox-target", concurrent_requests=2, requests_per_second=50, adaptive=False)
    sandbox.reset_stats()
    capsys.readouterr()
    assert main(["run", str(job), "--json"]) == 0
    assert_copied(sandbox, job, store, ids)
    throttled = summary(capsys.readouterr().out)["throttled"]
    assert set(throttled) == {"sandbox-source", "sandbox-target"}
    assert throttled["sandbox-source"]["decreases"] == 0  # a calm platform lowers nothing

"""`scanjobs init` templates are the repository's example jobs, and they validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanjobs.cli import main
from scanjobs.jobfile import load_job
from scanjobs.templates import template_text

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("mode", ["copy", "download", "analyze", "compare"])
def test_templates_are_the_example_jobs(mode: str) -> None:
    assert template_text(mode) == (ROOT / "jobs" / f"{mode}.yaml").read_text()


@pytest.mark.parametrize("mode", ["copy", "download", "analyze", "compare"])
def test_init_writes_a_valid_job_with_a_working_modeline(mode: str, tmp_path: Path) -> None:
    path = tmp_path / "sub" / f"{mode}.yaml"
    assert main(["init", mode, str(path)]) == 0
    first = path.read_text().splitlines()[0]
    schema = (path.parent / first.split("$schema=", 1)[1]).resolve()
    assert schema.is_file() and schema.name == "job.schema.json"
    assert load_job(path, environ={}).mode == mode
    assert main(["init", mode, str(path)]) == 2  # never overwrites without --force
    assert main(["init", mode, str(path), "--force"]) == 0


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert "scanjobs" in capsys.readouterr().out
    for command in ("run", "validate", "plan", "status", "reset", "demo", "init"):
        assert main([command, "--help"]) == 0
        assert "example" in capsys.readouterr().out
    assert main(["sandbox", "up", "--help"]) == 0
    assert "--fault-rate" in capsys.readouterr().out

"""`scanjobs init` gives each job its own output folder (issue 12, point 14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanjobs.cli import main
from scanjobs.jobfile import load_job

SANDBOX_INFO = {
    "instances": {
        role: {
            "api_url": f"http://127.0.0.1:{port}",
            "db": {"host": "127.0.0.1", "port": port + 1, "dbname": role, "user": "u", "password": "p"},
            "username": "user",
            "password": "pw",
        }
        for role, port in (("source", 18000), ("target", 18100))
    },
    "source_scan_ids": [1, 2, 3],
    "target_store_id": 5,
}


@pytest.mark.parametrize("mode", ["copy", "download", "analyze"])
@pytest.mark.parametrize("sandbox", [False, True])
def test_two_jobs_made_by_init_have_their_own_output_folders(
    tmp_path: Path, mode: str, sandbox: bool
) -> None:
    """issue 12, point 14: two jobs made by `init` in one folder wrote into one output folder
    (the template's `../results/albt-to-stgalbt`, the sandbox's `results/copy`): each now gets
    `results/<its file name>` beside it, what a job without `output:` gets."""
    extra: list[str] = []
    if sandbox:
        (tmp_path / "sb").mkdir()
        (tmp_path / "sb" / "sandbox.json").write_text(json.dumps(SANDBOX_INFO), encoding="utf-8")
        extra = ["--sandbox", str(tmp_path / "sb")]
    outputs = []
    for name in ("first", "second"):
        path = tmp_path / "jobs" / f"{name}-{mode}.yaml"
        assert main(["init", mode, str(path), *extra]) == 0
        job = load_job(path, environ={})
        assert job.output == (tmp_path / "jobs" / "results" / path.stem).resolve()
        outputs.append(job.output)
    assert outputs[0] != outputs[1]

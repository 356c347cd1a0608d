"""The command line's own behaviour (the commands themselves are tested with what they drive)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scanjobs.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_a_closed_stdout_is_not_an_internal_error(tmp_path: Path) -> None:
    """`scanjobs validate JOB | head -0`: the reader is gone before the first line (issue 12, 22)."""
    read, write = os.pipe()
    os.close(read)
    try:
        run = subprocess.run(
            [sys.executable, "-m", "scanjobs", "validate", str(ROOT / "jobs" / "copy.yaml")],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            env={**os.environ, "TMPDIR": str(tmp_path)},
        )
    finally:
        os.close(write)
    assert run.returncode == 141, run.stderr
    assert run.stderr == ""
    assert not list(tmp_path.glob("scanjobs-crash-*")), "a traceback was written as if it were a bug"


def test_sandbox_info_and_down_are_commands(capsys: pytest.CaptureFixture[str]) -> None:
    """issue 12, point 23: `scanjobs sandbox info` and `down` exist, and take their folder."""
    for command in ("info", "down"):
        assert main(["sandbox", command, "--help"]) == 0
        assert "--dir" in capsys.readouterr().out
        assert main(["sandbox", command]) == 2  # --dir is required
    assert main(["sandbox", "down", "--dir", "x", "--timeout", "0"]) == 2

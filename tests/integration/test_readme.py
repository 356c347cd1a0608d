"""Every command the README shows runs as written (against a sandbox it starts itself)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.M | re.S)


def env_with_scanjobs() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}


def leftovers(folder: Path, wait: float = 30.0) -> list[psutil.Process]:
    """Processes still mentioning `folder` on their command line, after up to `wait` seconds."""

    def scan() -> list[psutil.Process]:
        found = []
        for p in psutil.process_iter(["cmdline"]):
            if any(str(folder) in part for part in (p.info["cmdline"] or [])):
                found.append(p)
        return found

    _gone, alive = psutil.wait_procs(scan(), timeout=wait)
    return alive


def test_setup_commands_come_first_and_ci_runs_the_test_command() -> None:
    setup = blocks("bash")
    assert len(setup) >= 2
    assert README.index("```bash") < README.index("```sh")
    demo, tests = setup[0].strip(), setup[1].strip()
    assert demo.endswith("scanjobs demo") and "pip install ." in demo
    assert tests in (ROOT / ".ci" / "run").read_text()


def test_demo_command_runs(tmp_path: Path) -> None:
    demo = blocks("bash")[0].strip().split("&&")[-1].strip()
    result = subprocess.run(
        demo, shell=True, cwd=tmp_path, env=env_with_scanjobs(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = tmp_path / "scanjobs-demo" / "results"
    assert (results / "copy" / "analysis_with_comments.xlsx").is_file()
    assert (results / "copy" / "scan_mapping.csv").is_file()
    assert (results / "images" / "manifest.csv").is_file()
    assert "Excel report:" in result.stdout


def test_walkthrough_commands_run_as_written(tmp_path: Path) -> None:
    script = "set -euo pipefail\n" + "\n".join(blocks("sh"))
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env_with_scanjobs(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, output[-5000:]
    assert not leftovers(tmp_path)  # `kill %1` stopped the sandbox and its PostgreSQL
    assert (tmp_path / "try" / "results" / "copy" / "analysis_with_comments.xlsx").is_file()
    assert (tmp_path / "try" / "results" / "analyze" / "analysis_with_comments.csv").is_file()
    assert not (tmp_path / "try" / "download.state.sqlite").exists()  # reset
    assert (tmp_path / "try" / "results" / "download" / "manifest.csv").is_file()
    assert (tmp_path / "try" / "results" / "compare" / "compare.xlsx").is_file()
    assert "gate passed (compare): regressed: 0 of" in output
    assert "gate breached (analysis): Wrong POG Name Mapping:" in output  # and the run exited 6

"""The pre-commit hook validates a repository of job files on commit (issue 15, point 6)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
OK = "version: 1\nmode: download\nsource: albt\nscans: {ids: [1, 2]}\n"
BAD = "version: 1\nmode: download\nsource: albt\nscans: {ids: []}\nbogus: 1\n"


def git(folder: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "qa", "GIT_AUTHOR_EMAIL": "qa@example.com"}
    env.update(GIT_COMMITTER_NAME="qa", GIT_COMMITTER_EMAIL="qa@example.com")
    done = subprocess.run(["git", *args], cwd=folder, env=env, capture_output=True, text=True, check=True)
    return done.stdout


def job_repository(folder: Path) -> Path:
    """A git repository of jobs: a good job, a broken one, instances.yaml, a CI workflow."""
    (folder / "jobs").mkdir(parents=True)
    (folder / "jobs" / "instances.yaml").write_text("albt: {}\n", encoding="utf-8")
    (folder / "jobs" / "ok.yaml").write_text(OK, encoding="utf-8")
    (folder / "jobs" / "broken.yml").write_text(BAD, encoding="utf-8")
    (folder / ".github").mkdir()
    (folder / ".github" / "ci.yaml").write_text("name: ci\non: push\n", encoding="utf-8")
    (folder / "README.md").write_text("jobs\n", encoding="utf-8")
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    return folder


def test_the_hook_as_pre_commit_runs_it(tmp_path: Path) -> None:
    """The hook's definition read from the file, its entry run the way pre-commit runs it: with
    the committed files its `files` pattern matches."""
    (hook,) = HOOKS
    assert (hook["id"], hook["language"]) == ("scanjobs-validate", "python")
    assert hook.get("pass_filenames", True)
    repo = job_repository(tmp_path / "repo")
    committed = git(repo, "ls-files").split()
    passed = [f for f in committed if re.search(hook["files"], f)]
    assert sorted(passed) == [".github/ci.yaml", "jobs/broken.yml", "jobs/instances.yaml", "jobs/ok.yaml"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    def run_hook(files: list[str]) -> subprocess.CompletedProcess[str]:
        command = [*shlex.split(hook["entry"]), *hook.get("args", []), *files]
        return subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=120)

    done = run_hook(passed)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "jobs/ok.yaml: ok" in done.stdout and "jobs/broken.yml: invalid" in done.stderr
    assert "ci.yaml" not in done.stdout + done.stderr
    (repo / "jobs" / "broken.yml").unlink()
    done = run_hook([f for f in passed if f != "jobs/broken.yml"])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.integration
def test_pre_commit_try_repo_validates_a_folder_of_jobs(tmp_path: Path) -> None:
    """`pre-commit try-repo` with this checkout: pre-commit installs scanjobs into its own
    environment (from the package index pip is configured with) and runs the hook."""
    pre_commit = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    if pre_commit is None or not (ROOT / ".git").exists():
        pytest.skip("needs pre-commit (the test extra) and a git checkout of scanjobs")
    repo = job_repository(tmp_path / "repo")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}

    def try_repo() -> subprocess.CompletedProcess[str]:
        command = [pre_commit, "try-repo", str(ROOT), "scanjobs-validate", "--all-files", "--verbose"]
        return subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=280)

    done = try_repo()
    assert done.returncode == 1, done.stdout + done.stderr  # pre-commit's "a hook failed"
    assert "jobs/broken.yml: invalid" in done.stdout and "unknown key 'bogus'" in done.stdout
    assert "jobs/ok.yaml: ok" in done.stdout
    git(repo, "rm", "-q", "-f", "jobs/broken.yml")
    done = try_repo()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "jobs/ok.yaml: ok" in done.stdout

"""A team's repository of job files: validate DIR, `scanjobs schema`, init's $schema (issue 15, point 6)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scanjobs.cli import main
from scanjobs.jobfile import load_job

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = (ROOT / "schemas" / "job.schema.json").read_text(encoding="utf-8")
OK = "version: 1\nmode: download\nsource: albt\nscans: {ids: [1, 2]}\n"
BAD = "version: 1\nmode: download\nsource: albt\nscans: {ids: []}\nbogus: 1\n"


def job_repository(root: Path) -> Path:
    """jobs/ with two good jobs (one nested, one *.yml), a bad one, instances.yaml and YAML that is
    not a job (a CI workflow); a hidden folder whose YAML is never looked at."""
    (root / "jobs" / "team").mkdir(parents=True)
    (root / "jobs" / "instances.yaml").write_text("albt: {}\n", encoding="utf-8")
    (root / "jobs" / "team" / "instances.yaml").write_text("albt: {}\n", encoding="utf-8")
    (root / "jobs" / "a.yaml").write_text(OK, encoding="utf-8")
    (root / "jobs" / "team" / "b.yml").write_text(OK, encoding="utf-8")
    (root / "jobs" / "team" / "broken.yaml").write_text(BAD, encoding="utf-8")
    (root / "jobs" / "workflow.yaml").write_text("name: ci\non: push\n", encoding="utf-8")
    (root / ".git").mkdir()
    (root / ".git" / "x.yaml").write_text(BAD, encoding="utf-8")
    return root / "jobs"


def test_validate_a_folder_gives_each_job_its_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = job_repository(tmp_path)
    assert main(["validate", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert f"{jobs / 'a.yaml'}: ok, mode download" in out
    assert f"{jobs / 'team' / 'b.yml'}: ok, mode download" in out
    assert f"{jobs / 'team' / 'broken.yaml'}: invalid" in err and "unknown key 'bogus'" in err
    assert "3 job file(s): 2 ok, 1 invalid; 1 other YAML file(s) skipped (no `mode:`)" in out
    assert ".git" not in out + err

    (jobs / "team" / "broken.yaml").unlink()
    assert main(["validate", str(jobs)]) == 0
    assert "2 job file(s): 2 ok, 0 invalid" in capsys.readouterr().out


def test_a_folder_without_jobs_is_refused_but_a_named_file_is_always_validated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(tmp_path)]) == 2
    assert "no job file under" in capsys.readouterr().err
    (tmp_path / "forgot-mode.yaml").write_text("version: 1\nsource: albt\n", encoding="utf-8")
    assert main(["validate", str(tmp_path / "forgot-mode.yaml")]) == 2  # not skipped: named


def test_jobs_only_skips_what_is_not_a_job_and_reads_instances_as_the_jobs_beside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the pre-commit hook runs: every committed YAML file is passed."""
    jobs = job_repository(tmp_path)
    assert main(["validate", "--jobs-only", str(jobs / "workflow.yaml")]) == 0
    assert capsys.readouterr().out == ""
    # a changed instances.yaml checks the jobs that use it (here: one of them is broken)
    assert main(["validate", "--jobs-only", str(jobs / "team" / "instances.yaml")]) == 2
    out, err = capsys.readouterr()
    assert "b.yml: ok" in out and "broken.yaml: invalid" in err
    assert main(["validate", "--jobs-only", str(jobs / "a.yaml"), str(jobs / "workflow.yaml")]) == 0


def test_schema_prints_or_writes_the_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == SCHEMA
    target = tmp_path / "schemas" / "job.schema.json"
    assert main(["schema", "--write", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == SCHEMA
    assert capsys.readouterr().out == f"wrote {target}\n"
    assert main(["schema", "--write", str(target)]) == 0
    assert capsys.readouterr().out == f"up to date: {target}\n"


def test_init_in_a_git_repository_names_the_schema_it_keeps_for_every_clone(tmp_path: Path) -> None:
    repo = tmp_path / "team-jobs"
    (repo / ".git").mkdir(parents=True)
    stale = repo / "schemas" / "job.schema.json"
    job = repo / "jobs" / "nightly" / "copy.yaml"
    assert main(["init", "copy", str(job)]) == 0
    assert job.read_text().splitlines()[0] == "# yaml-language-server: $schema=../../schemas/job.schema.json"
    assert stale.read_text(encoding="utf-8") == SCHEMA

    # a clone elsewhere (another user, another machine): the modeline still names the schema
    clone = tmp_path / "elsewhere" / "clone"
    shutil.copytree(repo, clone)
    first = (clone / "jobs" / "nightly" / "copy.yaml").read_text().splitlines()[0]
    assert (clone / "jobs" / "nightly" / first.split("$schema=", 1)[1]).resolve() == (
        clone / "schemas" / "job.schema.json"
    )

    # a schema from an older scanjobs is brought up to date; a second job shares it
    stale.write_text("{}", encoding="utf-8")
    assert main(["init", "download", str(repo / "jobs" / "download.yaml")]) == 0
    assert stale.read_text(encoding="utf-8") == SCHEMA
    assert (
        (repo / "jobs" / "download.yaml")
        .read_text()
        .startswith("# yaml-language-server: $schema=../schemas/job.schema.json\n")
    )
    assert load_job(job, environ={}).mode == "copy"


def test_init_outside_a_repository_keeps_the_schema_beside_the_job(tmp_path: Path) -> None:
    job = tmp_path / "loose" / "analyze.yaml"
    assert main(["init", "analyze", str(job)]) == 0
    assert job.read_text().splitlines()[0] == "# yaml-language-server: $schema=schemas/job.schema.json"
    assert (tmp_path / "loose" / "schemas" / "job.schema.json").read_text(encoding="utf-8") == SCHEMA

"""`init --sandbox` and the demo never overwrite a user's file: they add the sandbox's entries,
leave everything else byte for byte, and refuse a conflict by naming the file and the key.

A running sandbox is only a `sandbox.json` here: init reads nothing else of it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from scanjobs.cli import main
from scanjobs.demo import run_demo
from scanjobs.errors import JobError
from scanjobs.jobfile import load_job
from scanjobs.sandboxjobs import write_sandbox_instances

USER_INSTANCES = """\
# our real instances: do not lose this comment
albt:
  api_url: https://albt.example.test   # production
  db: {host: db.albt.example.test, port: 5432, dbname: albt, user: proxyuser}
"""
USER_ENV = "# real secrets\nALBT_PASSWORD='keep me'\nexport ALBT_DB_PASSWORD=also-keep  # note\n"


def fake_info(
    api_port: int = 18001, db_password: str = "dbpw-1", password: str = "apipw-1"
) -> dict[str, Any]:
    def instance(role: str, n: int) -> dict[str, Any]:
        return {
            "api_url": f"http://127.0.0.1:{api_port + n}",
            "db": {
                "host": "127.0.0.1",
                "port": api_port + 2,
                "dbname": role,
                "user": "proxyuser",
                "password": db_password,
            },
            "username": "qa",
            "password": f"{password}-{role}",
        }

    return {
        "instances": {"source": instance("source", 0), "target": instance("target", 1)},
        "source_scan_ids": [1, 2, 3],
        "target_store_id": 50,
    }


def fake_sandbox(folder: Path, **kwargs: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sandbox.json").write_text(json.dumps(fake_info(**kwargs)), encoding="utf-8")
    return folder


def user_files(folder: Path) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "instances.yaml").write_text(USER_INSTANCES, encoding="utf-8")
    (folder / ".env").write_text(USER_ENV, encoding="utf-8")
    (folder / ".env").chmod(0o640)
    return {name: (folder / name).read_bytes() for name in ("instances.yaml", ".env")}


def init(tmp_path: Path, *extra: str, mode: str = "copy", name: str = "copy.yaml") -> int:
    return main(["init", mode, str(tmp_path / "jobs" / name), "--sandbox", str(tmp_path / "sb"), *extra])


def test_init_adds_the_sandbox_beside_a_users_instances_and_env(tmp_path: Path) -> None:
    """issue 12, point 13: the user's instances.yaml and .env stay byte for byte, the sandbox's
    entries are added after them, and both the user's and the sandbox's instances load."""
    fake_sandbox(tmp_path / "sb")
    before = user_files(tmp_path / "jobs")
    assert init(tmp_path) == 0
    jobs = tmp_path / "jobs"
    for name, old in before.items():
        new = (jobs / name).read_bytes()
        assert new.startswith(old), f"{name}: the user's part was changed"
        assert b"sandbox-source" in new or b"SANDBOX_SOURCE_PASSWORD=" in new
    assert (jobs / ".env").stat().st_mode & 0o777 == 0o640  # the user's mode is kept
    job = load_job(jobs / "copy.yaml", environ={})
    assert job.source.api_url == "http://127.0.0.1:18001"
    assert job.source.password.value == "apipw-1-source"
    user_job = jobs / "mine.yaml"
    user_job.write_text(
        "version: 1\nmode: download\nsource: albt\nscans: {ids: [1]}\noutput: out\n", encoding="utf-8"
    )
    assert load_job(user_job, environ={}).source.password.value == "keep me"
    # a second job against the same sandbox changes neither file
    merged = {name: (jobs / name).read_bytes() for name in before}
    assert init(tmp_path, mode="download", name="download.yaml") == 0
    assert {name: (jobs / name).read_bytes() for name in before} == merged


@pytest.mark.parametrize(
    ("name", "content", "key"),
    [
        ("instances.yaml", "sandbox-source:\n  api_url: http://elsewhere.test\n", "sandbox-source"),
        (".env", "SANDBOX_TARGET_PASSWORD=a-real-one\n", "SANDBOX_TARGET_PASSWORD"),
    ],
)
def test_init_refuses_a_conflict_and_names_the_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str, key: str
) -> None:
    """issue 12, point 13: a conflicting entry is refused without --force (nothing written, the
    value never printed); --force replaces only the sandbox's entries, the rest stays."""
    fake_sandbox(tmp_path / "sb")
    before = user_files(tmp_path / "jobs")
    path = tmp_path / "jobs" / name
    path.write_bytes(before[name] + content.encode())
    conflicted = path.read_bytes()
    assert init(tmp_path) == 2
    err = capsys.readouterr().err
    assert str(path) in err and key in err and "--force" in err
    assert "a-real-one" not in err and "apipw" not in err and "elsewhere" not in err
    assert path.read_bytes() == conflicted
    assert not (tmp_path / "jobs" / "copy.yaml").exists()  # nothing at all was written

    assert init(tmp_path, "--force") == 0
    after = path.read_bytes()
    assert after.startswith(before[name])  # the user's own entries are untouched
    job = load_job(tmp_path / "jobs" / "copy.yaml", environ={})
    assert job.source.api_url == "http://127.0.0.1:18001"
    assert job.target.instance.password.value == "apipw-1-target"


def test_init_refuses_a_file_it_cannot_merge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """issue 12, point 13: an instances.yaml that is not a mapping (or not YAML) is never replaced,
    not even with --force."""
    fake_sandbox(tmp_path / "sb")
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    for text in ("- a list\n", "albt: [unclosed\n", "{albt: {api_url: http://x.test}}\n"):
        (jobs / "instances.yaml").write_text(text, encoding="utf-8")
        for extra in ((), ("--force",)):
            assert init(tmp_path, *extra) == 2
            assert (jobs / "instances.yaml").read_text(encoding="utf-8") == text
            assert str(jobs / "instances.yaml") in capsys.readouterr().err
            assert not (jobs / "copy.yaml").exists() and not (jobs / ".env").exists()


def test_init_never_writes_a_job_over_the_instances_or_env(tmp_path: Path) -> None:
    """issue 12, point 13: `init copy instances.yaml` would put a job where the shared
    instances live (and `.env` where the secrets do): refused, even with --force."""
    fake_sandbox(tmp_path / "sb")
    before = user_files(tmp_path / "jobs")
    for name in ("instances.yaml", ".env"):
        assert init(tmp_path, "--force", name=name) == 2
        assert main(["init", "copy", str(tmp_path / "jobs" / name), "--force"]) == 2
    assert {name: (tmp_path / "jobs" / name).read_bytes() for name in before} == before


def test_write_sandbox_instances_keeps_a_symlinked_env(tmp_path: Path) -> None:
    """issue 12, point 13: a .env that links to a shared secrets file is extended where it
    lies; the link stays a link."""
    shared = tmp_path / "secrets.env"
    shared.write_text(USER_ENV, encoding="utf-8")
    folder = tmp_path / "jobs"
    folder.mkdir()
    os.symlink(shared, folder / ".env")
    write_sandbox_instances(fake_info(), folder)
    assert (folder / ".env").is_symlink()
    assert shared.read_text(encoding="utf-8").startswith(USER_ENV)
    assert "SANDBOX_SOURCE_PASSWORD=apipw-1-source" in shared.read_text(encoding="utf-8")
    with pytest.raises(JobError, match="SANDBOX_SOURCE_PASSWORD"):
        write_sandbox_instances(fake_info(password="other"), folder)


def test_the_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    """issue 12, point 13 (a sibling): the demo starts over by deleting its results and job
    states; in a folder of the user's it would delete theirs. It refuses before starting
    anything, and the user's files stay."""
    folder = tmp_path / "work"
    user_files(folder / "jobs")
    (folder / "results").mkdir()
    (folder / "results" / "report.xlsx").write_bytes(b"precious")
    with pytest.raises(JobError, match="not a scanjobs demo folder"):
        run_demo(folder)
    assert (folder / "results" / "report.xlsx").read_bytes() == b"precious"
    assert (folder / "jobs" / "instances.yaml").read_text(encoding="utf-8") == USER_INSTANCES
    assert not (folder / "sandbox").exists()


@pytest.mark.parametrize(
    "damage",
    [
        lambda info: "{not json",
        lambda info: [],
        lambda info: {**info, "target_store_id": "50; rm -rf"},
        lambda info: {k: v for k, v in info.items() if k != "instances"},
        lambda info: info["instances"]["source"].update(password="pw\nEVIL=1") or info,
        lambda info: info["instances"]["target"]["db"].update(port="x") or info,
    ],
)
def test_init_refuses_a_damaged_sandbox_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: Any
) -> None:
    """issue 12, point 13 (a sibling): sandbox.json is read as input; a damaged one is refused by
    name (never exit 3, never a line slipped into .env, never a password echoed)."""
    folder = fake_sandbox(tmp_path / "sb")
    damaged = damage(fake_info())
    text = damaged if isinstance(damaged, str) else json.dumps(damaged)
    (folder / "sandbox.json").write_text(text, encoding="utf-8")
    assert init(tmp_path) == 2
    err = capsys.readouterr().err
    assert str(folder / "sandbox.json") in err and "EVIL" not in err and "apipw" not in err
    assert not (tmp_path / "jobs").exists() or not any((tmp_path / "jobs").iterdir())


def test_init_writes_each_mode_s_sandbox_job_and_they_validate(tmp_path: Path) -> None:
    """copy, download, analyze (of the copy) and compare (the copy's analysis against the
    analyze job's) against one sandbox: each job loads, the compare naming the other two."""
    fake_sandbox(tmp_path / "sb")
    for mode in ("copy", "download", "analyze", "compare"):
        assert init(tmp_path, mode=mode, name=f"{mode}.yaml") == 0
        job = load_job(tmp_path / "jobs" / f"{mode}.yaml", environ={})
        assert job.mode == mode
    compare = load_job(tmp_path / "jobs" / "compare.yaml", environ={})
    assert compare.compare.baseline.name == "copy.yaml" and compare.compare.candidate.name == "analyze.yaml"

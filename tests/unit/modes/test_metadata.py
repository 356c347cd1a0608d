"""The job metadata of a report (issue 15, point 2): what identifies the job and run, never a
secret; and `status --runs` (point 8) from a state's runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanjobs import __version__
from scanjobs.cli import main
from scanjobs.jobfile import CopyJob, load_job
from scanjobs.modes.metadata import current_run, report_metadata
from scanjobs.state import StateStore

JOB = """\
version: 1
mode: copy
name: nightly
source: src
target: {instance: tgt, store: 42}
scans: {query: {store: 7, from: 2026-01-01, to: 2026-01-31}}
copy: {strategy: mapped}
instances:
  src: {api_url: "https://src.example/api/", username: "${SRC_USERNAME}", password: "${SRC_PASSWORD}",
        db: {host: db.src, password: "${SRC_DB_PASSWORD}"}}
  tgt: {api_url: "https://tgt.example/api/", token: "${TGT_TOKEN}",
        db: {host: db.tgt, password: "${TGT_DB_PASSWORD}"}}
"""
SECRETS = {
    "SRC_USERNAME": "qa-user-x1",
    "SRC_PASSWORD": "pw-source-s3cret",
    "SRC_DB_PASSWORD": "db-source-s3cret",
    "TGT_TOKEN": "token-target-s3cret",
    "TGT_DB_PASSWORD": "db-target-s3cret",
}


@pytest.fixture()
def job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CopyJob:
    for name, value in SECRETS.items():  # for the commands, which read the environment
        monkeypatch.setenv(name, value)
    path = tmp_path / "nightly.yaml"
    path.write_text(JOB, encoding="utf-8")
    loaded = load_job(path, environ=SECRETS)
    assert isinstance(loaded, CopyJob)
    return loaded


def test_metadata_names_the_job_instances_settings_and_run_but_no_secret(job: CopyJob) -> None:
    meta = report_metadata(job, (3, 1_767_225_600.0), finished_at=1_767_225_660.0, pairs=5, rows=7, scans=5)
    assert meta["job"] == {
        "name": "nightly",
        "file": str(job.path),
        "mode": "copy",
        "fingerprint": job.fingerprint(),
        "output": str(job.output),
    }
    assert meta["source"] == {"name": "src", "api_url": "https://src.example/api"}
    assert meta["target"] == {"name": "tgt", "api_url": "https://tgt.example/api", "store": 42}
    assert meta["strategy"] == "mapped"
    assert meta["scans"] == {
        "kind": "query",
        "stores": [7],
        "from": "2026-01-01",
        "to": "2026-01-31",
        "status": "done",
        "limit": None,
    }
    assert meta["run"] == {
        "id": 3,
        "started": "2026-01-01T00:00:00+00:00",
        "finished": "2026-01-01T00:01:00+00:00",
        "reanalyze": False,
    }
    assert meta["analysis"] == {"pairs": 5, "rows": 7, "scans": 5}
    assert meta["scanjobs_version"] == __version__
    text = json.dumps(meta)
    assert not [name for name, secret in SECRETS.items() if secret in text]


def test_the_current_run_is_the_last_one_the_state_recorded(job: CopyJob) -> None:
    store = StateStore.open(job.state_path, fingerprint=job.fingerprint())
    try:
        assert current_run(store) == (None, None)
        first = store.start_run()
        store.finish_run(first, 0, {"done": 2})
        second = store.start_run()
        run_id, started = current_run(store)
        assert run_id == second != first and started is not None
    finally:
        store.close()


def test_status_runs_lists_every_run_with_its_counts(
    job: CopyJob, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", str(job.path), "--runs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"] == []

    store = StateStore.open(job.state_path, fingerprint=job.fingerprint())
    try:
        a = store.start_run()
        store.finish_run(a, 1, {"done": 3, "failed": 1, "already_done": 0, "elapsed": 2.5})
        b = store.start_run()
        store.finish_run(b, 0, {"done": 0, "failed": 0, "already_done": 4, "elapsed": 0.4, "reanalyze": True})
        store.start_run()  # killed: no end recorded, and no lock held
    finally:
        store.close()

    assert main(["status", str(job.path), "--runs", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["job"] == str(job.path)
    runs = report["runs"]
    assert [(r["id"], r["exit_code"], r["status"]) for r in runs] == [
        (1, 1, "partial"),
        (2, 0, "ok"),
        (3, None, "unrecorded"),
    ]
    assert runs[0]["summary"] == {"done": 3, "failed": 1, "already_done": 0, "elapsed": 2.5}  # an object
    assert runs[0]["started"] and runs[0]["finished"] and runs[2]["finished"] is None

    assert main(["status", str(job.path), "--runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"job {job.path}: 3 run(s)"
    assert lines[1].split()[:4] == ["run", "started", "ended", "exit"]
    assert "1 partial" in lines[2] and "2.5s" in lines[2]
    assert "0 ok" in lines[3] and "reanalyze" in lines[3]
    assert lines[4].rstrip().endswith("unrecorded")


def test_reanalyze_refuses_copy_options_and_download_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("A_TOKEN", "t")
    monkeypatch.setenv("A_DB_PASSWORD", "p")
    job = tmp_path / "d.yaml"
    job.write_text(
        "version: 1\nmode: download\nsource: a\nscans: {ids: [1]}\n"
        'instances:\n  a: {token: "${A_TOKEN}", db: {password: "${A_DB_PASSWORD}"}}\n',
        encoding="utf-8",
    )
    assert main(["run", str(job), "--reanalyze", "--limit", "3"]) == 2
    assert "--reanalyze copies nothing" in capsys.readouterr().err
    assert main(["run", str(job), "--reanalyze"]) == 2
    assert "is a download job, which has no analysis" in capsys.readouterr().err

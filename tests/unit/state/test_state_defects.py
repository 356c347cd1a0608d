"""Defects of the state's files (issue 12, points 2 and 3); each test failed before its fix.

They use only what existed before the state became a package, so that they run on either code.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from scanjobs.cli import main
from scanjobs.errors import StateError
from scanjobs.jobfile import load_job
from scanjobs.lifecycle import restart_state
from scanjobs.state import ItemKind, StateStore

JOB = "version: 1\nmode: download\nsource: a\nscans: {ids: [1]}\ninstances: {a: {}}\n"


@pytest.mark.parametrize("folder", ["a #1", "what?", "100%41 b", "x #?%20 y", "100% b"])
def test_a_state_under_a_path_with_uri_characters_reopens(
    tmp_path: Path, folder: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`#`, `?`, `%` and spaces are a URI's fragment, query and escapes: the read-only check must
    quote them, or it opens another file (or none) and resume breaks."""
    job_dir = tmp_path / folder
    job_dir.mkdir()
    job = job_dir / "job.yaml"
    job.write_text(JOB)
    path = load_job(job).state_path
    store = StateStore.open(path, fingerprint="f1")
    store.add_items("image", [("1:5", 1), ("1:6", 1)])
    store.mark_failed(ItemKind.IMAGE, "1:6", "download", RuntimeError("404 Not Found"))
    store.close()

    readonly = StateStore.open(path, create=False)
    assert [r.key for r in readonly.items("image")] == ["1:5", "1:6"]
    readonly.close()
    again = StateStore.open(path, fingerprint="f1")  # the next run of the same job resumes
    assert [r.key for r in again.items("image", status="failed")] == ["1:6"]
    again.close()
    with pytest.raises(StateError, match="the job changed"):  # the file read is really this one
        StateStore.open(path, fingerprint="f2")

    capsys.readouterr()
    assert main(["status", str(job), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["image"] == {"pending": 1, "failed": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder]  # no stray file beside the folder


def test_two_restarts_within_one_second_keep_both_backups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_file = tmp_path / "job.yaml"
    job_file.write_text(JOB)
    job = load_job(job_file)
    real_strftime = time.strftime

    def same_second(fmt: str, *args: time.struct_time) -> str:
        return real_strftime(fmt, time.localtime(1_700_000_000))

    monkeypatch.setattr(time, "strftime", same_second)
    backups = []
    for key in ("1:5", "1:6"):
        store = StateStore.open(job.state_path, fingerprint="f")
        store.add_items("image", [(key, 1)])
        store.close()
        backups.append(restart_state(job))
        assert not job.state_path.exists()
    first, second = backups
    assert first is not None and second is not None and first != second
    for backup, key in zip(backups, ("1:5", "1:6"), strict=True):
        assert backup is not None
        kept = StateStore.open(backup, create=False)
        assert [r.key for r in kept.items("image")] == [key]
        kept.close()


def test_a_damaged_state_is_a_state_error_for_status_and_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status` reads without checking every page first (that took half a second at 100k scans):
    a damaged page it meets is still exit 4 naming the file, never an internal error; a run
    checks every page before it writes."""
    job = tmp_path / "job.yaml"
    job.write_text(JOB)
    path = load_job(job).state_path
    store = StateStore.open(path, fingerprint="f1")
    store.add_items("image", [(f"1:{i}", 1) for i in range(3000)])  # pages beyond the first
    store.close()
    data = bytearray(path.read_bytes())
    page = 4096
    for at in range(2 * page, len(data) - page, page):  # every page but the first (the schema)
        data[at + 100 : at + 400] = b"\xff" * 300
    path.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["status", str(job)]) == 4
    assert "damaged" in capsys.readouterr().err
    with pytest.raises(StateError, match="damaged|unreadable"):
        StateStore.open(path, fingerprint="f1")

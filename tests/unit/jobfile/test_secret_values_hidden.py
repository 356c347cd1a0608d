"""A credential's value is never shown, whatever its type and wherever it is written (issue 12, point 11)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scanjobs.cli import main
from scanjobs.errors import JobError
from scanjobs.jobfile import load_job

SECRET = 837146592031
HEAD: dict[str, Any] = {"version": 1, "mode": "download", "source": "a", "scans": {"ids": [1]}}
# Values a literal credential can take in YAML besides text, each holding the secret digits.
LITERALS: list[Any] = [
    SECRET,
    float(SECRET),
    [SECRET],
    {"x": SECRET},
    [str(SECRET)],
    {str(SECRET): 1},
]
PLACES = [("password",), ("db", "password"), ("username",), ("token",)]  # token: issue 13, point 3


def _instance(place: tuple[str, ...], value: Any) -> dict[str, Any]:
    return {place[0]: value} if len(place) == 1 else {"db": {place[1]: value}}


def _refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """What load_job and `scanjobs validate` say about the job in tmp_path (both refuse it)."""
    with pytest.raises(JobError) as info:
        load_job(tmp_path / "job.yaml", environ={})
    assert main(["validate", str(tmp_path / "job.yaml")]) == 2
    captured = capsys.readouterr()
    return f"{info.value}\n{captured.out}\n{captured.err}"


@pytest.mark.parametrize("value", LITERALS, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("place", PLACES, ids=".".join)
def test_a_non_text_credential_in_the_job_is_refused_without_its_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], place: tuple[str, ...], value: Any
) -> None:
    """issue 12, point 11: `password: 8371...` was echoed as "expected string, got int 8371..."."""
    job = {**HEAD, "instances": {"a": _instance(place, value)}}
    (tmp_path / "job.yaml").write_text(json.dumps(job), encoding="utf-8")
    said = _refusal(tmp_path, capsys)
    assert f"instances.a.{'.'.join(place)}" in said  # still located
    assert str(SECRET) not in said and str(SECRET)[:6] not in said


@pytest.mark.parametrize("value", LITERALS, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("place", PLACES, ids=".".join)
def test_a_non_text_credential_in_instances_yaml_is_refused_without_its_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], place: tuple[str, ...], value: Any
) -> None:
    """issue 12, point 11: the same in instances.yaml beside the job."""
    (tmp_path / "job.yaml").write_text(json.dumps(HEAD), encoding="utf-8")
    (tmp_path / "instances.yaml").write_text(json.dumps({"a": _instance(place, value)}), encoding="utf-8")
    said = _refusal(tmp_path, capsys)
    assert f"a.{'.'.join(place)}" in said and "instances.yaml" in said
    assert str(SECRET) not in said and str(SECRET)[:6] not in said


@pytest.mark.parametrize("place", PLACES, ids=".".join)
def test_an_empty_credential_is_refused_without_echo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], place: tuple[str, ...]
) -> None:
    """issue 12, point 11: every schema rule of a credential says what is wrong, not what is there."""
    job = {**HEAD, "instances": {"a": _instance(place, "")}}
    (tmp_path / "job.yaml").write_text(json.dumps(job), encoding="utf-8")
    said = _refusal(tmp_path, capsys)
    assert "''" not in said and "too short" not in said
    assert "must not be empty" in said


def test_a_bad_api_url_is_shown_as_written_not_expanded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 12, point 11 (a sibling): a variable's value (which may be a secret) is not echoed
    when the text it expands into is refused; the text as written is."""
    monkeypatch.setenv("API_HOST", f" user:{SECRET}@host")
    job = {**HEAD, "instances": {"a": {"api_url": "http://${API_HOST}"}}}
    (tmp_path / "job.yaml").write_text(json.dumps(job), encoding="utf-8")
    with pytest.raises(JobError) as info:
        load_job(tmp_path / "job.yaml")
    said = str(info.value)
    assert "instances.a.api_url" in said and "${API_HOST}" in said
    assert str(SECRET) not in said


@pytest.mark.parametrize("url", ["ftp://user:837146592031@host", "https://user:837146592031@host"])
def test_a_password_in_an_api_url_is_not_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    """issue 12, point 12 (a sibling): an api_url with user:password@ was echoed by the schema's
    pattern message (ftp://...) and by the loader's own."""
    job = {**HEAD, "instances": {"a": {"api_url": url}}}
    (tmp_path / "job.yaml").write_text(json.dumps(job), encoding="utf-8")
    said = _refusal(tmp_path, capsys)
    assert "instances.a.api_url" in said
    assert str(SECRET) not in said

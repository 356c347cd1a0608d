"""An instance's API token (issue 13, point 3): given instead of a username and password, a
secret like the others, and never both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scanjobs.cli import main
from scanjobs.errors import JobError
from scanjobs.jobfile import load_job

TOKEN = "tok-9f8e7d6c5b4a"
HEAD: dict[str, Any] = {"version": 1, "mode": "download", "source": "a", "scans": {"ids": [1]}}
ENV = {"A_DB_PASSWORD": "dbpw"}


def write(tmp_path: Path, instance: dict[str, Any]) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps({**HEAD, "instances": {"a": instance}}), encoding="utf-8")
    return path


def refusal(tmp_path: Path, instance: dict[str, Any], env: dict[str, str]) -> str:
    with pytest.raises(JobError) as info:
        load_job(write(tmp_path, instance), environ=env)
    return str(info.value)


def test_a_token_reference_replaces_username_and_password(tmp_path: Path) -> None:
    """issue 13, point 3: an account with two-factor login can only give a token."""
    job = load_job(write(tmp_path, {"token": "${MY_TOKEN}"}), environ={**ENV, "MY_TOKEN": TOKEN})
    source = job.source
    assert source.token is not None and source.token.reveal() == TOKEN
    assert source.username is None and source.password is None
    assert TOKEN not in repr(job) and TOKEN not in str(source.token)
    assert [s.var for s in source.secrets()] == ["MY_TOKEN", "A_DB_PASSWORD"]


def test_an_instance_that_gives_neither_reads_its_default_token_variable(tmp_path: Path) -> None:
    """issue 13, point 3: NAME_TOKEN, like NAME_PASSWORD and NAME_DB_PASSWORD."""
    job = load_job(write(tmp_path, {}), environ={**ENV, "A_TOKEN": TOKEN})
    assert job.source.token is not None and job.source.token.reveal() == TOKEN
    assert job.source.token.var == "A_TOKEN" and job.source.password is None
    # without A_TOKEN, the login of old: A_USERNAME and A_PASSWORD, checked when connecting
    job = load_job(write(tmp_path, {}), environ=ENV)
    assert job.source.token is None and job.source.password is not None
    assert job.source.password.var == "A_PASSWORD"


@pytest.mark.parametrize(
    "instance",
    [
        {"token": "${MY_TOKEN}", "password": "${MY_PASSWORD}"},
        {"token": "${MY_TOKEN}", "username": "robot"},
    ],
    ids=["token-and-password", "token-and-username"],
)
def test_a_token_and_a_login_together_are_refused(tmp_path: Path, instance: dict[str, Any]) -> None:
    """issue 13, point 3: one or the other; both would leave it to chance which one is used."""
    env = {**ENV, "MY_TOKEN": TOKEN, "MY_PASSWORD": "pw"}
    message = refusal(tmp_path, instance, env)
    assert "instances.a" in message and "not both" in message
    assert TOKEN not in message and "'pw'" not in message


def test_both_default_variables_set_is_refused_with_the_choice_to_make(tmp_path: Path) -> None:
    """issue 13, point 3: A_TOKEN and A_PASSWORD both set, and the instance names neither."""
    message = refusal(tmp_path, {}, {**ENV, "A_TOKEN": TOKEN, "A_PASSWORD": "pw"})
    assert "A_TOKEN" in message and "A_PASSWORD" in message
    assert "token: ${A_TOKEN}" in message and "password: ${A_PASSWORD}" in message
    assert TOKEN not in message


def test_a_literal_token_is_refused_with_the_reference_to_write(tmp_path: Path) -> None:
    message = refusal(tmp_path, {"token": TOKEN}, ENV)
    assert "instances.a.token" in message and "literal secret" in message and "${A_TOKEN}" in message
    assert TOKEN not in message


def test_an_unset_token_variable_is_reported_at_once(tmp_path: Path) -> None:
    message = refusal(tmp_path, {"token": "${NOWHERE_TOKEN}"}, ENV)
    assert "instances.a.token" in message and "${NOWHERE_TOKEN} is not set" in message


def test_validate_lists_what_a_token_instance_still_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_TOKEN", TOKEN)
    for var in ("A_DB_PASSWORD", "A_USERNAME", "A_PASSWORD", "A_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    assert main(["validate", str(write(tmp_path, {"token": "${MY_TOKEN}"}))]) == 0
    out = capsys.readouterr().out
    assert "set: A_DB_PASSWORD)" in out  # not A_USERNAME nor A_PASSWORD: the token replaces them
    assert TOKEN not in out

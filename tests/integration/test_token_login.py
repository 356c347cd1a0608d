"""A job whose instance gives an API token (issue 13, point 3): runs without logging in; a
two-factor account given a password, or a token the platform refuses, stops at once (exit 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from scanjobs.cli import main
from scanjobs.errors import ExitCode
from scanjobs.ownership import OWNER_MARKER
from scanjobs.sandbox import Sandbox
from scanjobs.sandbox.instance import TWO_FACTOR_USER

pytestmark = pytest.mark.integration

LOGIN_ROUTE = "/api/v4/token-auth/"


def two_factor_token(sb: Sandbox) -> str:
    """A token of the source's two-factor account, got with the code it emailed."""
    url = f"{sb.source_api}{LOGIN_ROUTE}"
    login = {"username": TWO_FACTOR_USER, "password": sb.info["instances"]["source"]["password"]}
    assert requests.post(url, json=login, timeout=10).status_code == 400
    answer = requests.post(
        url, json={**login, "verification_code": sb.verification_code("source", TWO_FACTOR_USER)}, timeout=10
    )
    answer.raise_for_status()
    return str(answer.json()["token"])


def write_job(
    folder: Path, sb: Sandbox, ids: list[int], credentials: dict[str, str], env: dict[str, str]
) -> Path:
    """A download job of the source whose instance gives `credentials` (references), their
    values in .env beside it."""
    inst = sb.info["instances"]["source"]
    db = inst["db"]
    env = {**env, "SRC_DB_PASSWORD": str(db["password"])}
    (folder / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    job: dict[str, Any] = {
        "version": 1,
        "mode": "download",
        "source": "src",
        "scans": {"ids": ids},
        "retry": {
            "attempts": 3,
            "backoff": {"initial": 0.05, "max": 0.5},
            "timeout": {"connect": 2, "read": 5},
        },
        "output": "images",
        "instances": {
            "src": {
                "api_url": inst["api_url"],
                "db": {
                    **{k: db[k] for k in ("host", "port", "dbname", "user")},
                    "password": "${SRC_DB_PASSWORD}",
                },
                **credentials,
            }
        },
    }
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    return path


def logins(sb: Sandbox) -> int:
    return sum(r["count"] for r in sb.stats("source")["requests"] if r["route"] == LOGIN_ROUTE)


def test_a_job_with_a_token_runs_without_logging_in(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """issue 13, point 3: `token: ${VAR}` instead of username and password: the token of a
    two-factor account, which has no other way in."""
    token = two_factor_token(sandbox)
    ids = sandbox.info["source_scan_ids"][:2]
    job = write_job(tmp_path, sandbox, ids, {"token": "${SRC_TOKEN}"}, {"SRC_TOKEN": token})
    sandbox.reset_stats()
    assert main(["plan", str(job)]) == 0
    assert main(["run", str(job)]) == 0
    assert logins(sandbox) == 0
    images = [
        p
        for p in (tmp_path / "images").iterdir()
        if p.name not in ("manifest.csv", "failures.csv", OWNER_MARKER)
    ]
    assert len(images) == 2 * sandbox.options.files_per_scan
    captured = capsys.readouterr()
    assert token not in captured.out + captured.err
    assert token not in (tmp_path / "job.state.log").read_text(encoding="utf-8", errors="replace")


def test_a_two_factor_account_with_a_password_is_told_to_use_a_token(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """issue 13, point 3: it was "login ... refused", as if the password were wrong (exit 5)."""
    password = str(sandbox.info["instances"]["source"]["password"])
    job = write_job(
        tmp_path,
        sandbox,
        sandbox.info["source_scan_ids"][:1],
        {"username": TWO_FACTOR_USER, "password": "${SRC_PASSWORD}"},
        {"SRC_PASSWORD": password},
    )
    assert main(["plan", str(job)]) == ExitCode.UNREACHABLE
    assert main(["run", str(job)]) == ExitCode.UNREACHABLE
    captured = capsys.readouterr()
    said = captured.out + captured.err
    assert said.count("this account needs two-factor login: use a token") >= 2, said
    assert password not in said
    assert not (tmp_path / "images").exists() or not any(
        p.suffix in (".png", ".jpg") for p in (tmp_path / "images").iterdir()
    )


def test_a_refused_token_stops_the_run_at_once(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """issue 13, point 3: a token the platform refuses is an error of the run (exit 5), said
    as such, never printed; no login is tried."""
    token = "e" * 40
    job = write_job(
        tmp_path,
        sandbox,
        sandbox.info["source_scan_ids"][:1],
        {"token": "${SRC_TOKEN}"},
        {"SRC_TOKEN": token},
    )
    sandbox.reset_stats()
    assert main(["run", str(job)]) == ExitCode.UNREACHABLE
    captured = capsys.readouterr()
    said = captured.out + captured.err
    assert "refused the API token" in said and token not in said
    assert logins(sandbox) == 0

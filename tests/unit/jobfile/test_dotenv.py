""".env files beside a job: what a user writes reads as meant, what cannot be read is refused
with its place (issue 12, point 12). The properties are in test_env_properties.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanjobs.cli import main
from scanjobs.errors import JobError
from scanjobs.jobfile import load_job
from scanjobs.jobfile.env import read_dotenv

JOB = """\
version: 1
mode: download
source: a
scans: {ids: [1]}
instances:
  a: {password: "${A_PASSWORD}", db: {password: "${A_DB_PASSWORD}"}}
"""


def _job(tmp_path: Path, dotenv: bytes) -> Path:
    (tmp_path / ".env").write_bytes(dotenv)
    path = tmp_path / "job.yaml"
    path.write_text(JOB, encoding="utf-8")
    return path


def test_a_dotenv_that_is_not_utf8_is_refused_at_validate_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """issue 12, point 12: a Latin-1 .env made `validate` (and every command) exit 3."""
    job = _job(tmp_path, b"A_DB_PASSWORD=x\n# comment\nA_PASSWORD=caf\xe9\n")
    assert main(["validate", str(job)]) == 2
    err = capsys.readouterr().err
    assert ".env" in err and "line 3" in err and "UTF-8" in err
    assert "caf" not in err  # the line holds a password: it is not shown


def test_a_bom_at_the_start_of_a_dotenv_is_not_part_of_the_first_name(tmp_path: Path) -> None:
    """issue 12, point 12: an editor's BOM made the first variable unreadable (silently unset)."""
    job = load_job(_job(tmp_path, "\ufeffA_PASSWORD=pw\nA_DB_PASSWORD=db\n".encode()), environ={})
    assert job.source.password.reveal() == "pw" and job.source.db.password.reveal() == "db"


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ('KEY="pw" # comment', "pw"),
        ("KEY='pw'   # comment", "pw"),
        ('KEY="pw"# comment', "pw"),
        ("export KEY='p w' # comment", "p w"),
        ('KEY="p # w" # comment', "p # w"),
        ("KEY=  # fill in", ""),
        ("KEY=\t# fill in", ""),
        ("KEY=pw # comment", "pw"),
        ("KEY=pw#not-a-comment", "pw#not-a-comment"),
        ("KEY=#not-a-comment", "#not-a-comment"),
        ('KEY="pw', '"pw'),
        ("KEY='pw' trailing", "'pw' trailing"),
    ],
)
def test_a_value_reads_as_a_shell_would(tmp_path: Path, line: str, value: str) -> None:
    """issue 12, point 12: `KEY="pw" # comment` gave the password `"pw" # comment`."""
    path = tmp_path / ".env"
    path.write_text(line + "\n", encoding="utf-8")
    assert read_dotenv(path) == {"KEY": value}


@pytest.mark.parametrize("odd", ["\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
def test_only_newlines_end_a_dotenv_line(tmp_path: Path, odd: str) -> None:
    """issue 12, point 12 (the strict xfail of test_env_properties): str.splitlines cut a value
    at characters a .env reader does not break lines on."""
    path = tmp_path / ".env"
    path.write_text(f"A='a{odd}b'\nB=2\r\nC=3\rD=4", encoding="utf-8", newline="")
    assert read_dotenv(path) == {"A": f"a{odd}b", "B": "2", "C": "3", "D": "4"}


def test_a_dotenv_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    """issue 12, point 12 (a sibling): a .env that exists but cannot be read was an internal error."""
    (tmp_path / ".env").mkdir()  # not a file: there is nothing to read, as when it is missing
    assert read_dotenv(tmp_path / ".env") == {}
    path = tmp_path / "deep.env"
    path.symlink_to(path)  # a symlink loop: is_file() is False, so it reads as missing
    assert read_dotenv(path) == {}
    long = tmp_path / ("x" * 300)  # ENAMETOOLONG is not one of the errors is_file() hides
    with pytest.raises(JobError, match="cannot read"):
        read_dotenv(long)

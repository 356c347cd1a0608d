"""Job files cannot make the loader do unbounded work: aliases, deep nesting (issue 12, point 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanjobs.cli import main
from scanjobs.errors import JobError
from scanjobs.jobfile import load_job
from scanjobs.jobfile.yamlio import MAX_DEPTH

HEAD = "version: 1\nmode: download\nsource: a\nscans: {ids: [1]}\ninstances: {a: {}}\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_nested_aliases_are_refused_with_their_line(tmp_path: Path) -> None:
    levels = ["a0: &a0 [x, x, x, x]"]
    levels += [f"a{n}: &a{n} [*a{n - 1}, *a{n - 1}, *a{n - 1}, *a{n - 1}]" for n in range(1, 6)]
    job = write(tmp_path, HEAD + "bomb:\n" + "".join(f"  {line}\n" for line in levels))
    with pytest.raises(JobError, match=r"line 8: YAML aliases \(\*a0\) are not allowed"):
        load_job(job)


def test_a_self_referencing_alias_is_an_invalid_job_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = write(tmp_path, HEAD + "loop: &loop [*loop]\n")
    assert main(["validate", str(job)]) == 2
    assert "YAML aliases (*loop) are not allowed" in capsys.readouterr().err


def test_nesting_deeper_than_any_job_is_refused(tmp_path: Path) -> None:
    depth = 10_000  # PyYAML's composer recurses once per level
    job = write(tmp_path, HEAD + "deep: " + "[" * depth + "]" * depth + "\n")
    with pytest.raises(JobError, match=f"nested deeper than {MAX_DEPTH} levels"):
        load_job(job)


def test_an_integer_of_thousands_of_digits_is_refused_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """issue 12, point 12 (a sibling): int() refuses more than 4300 digits with ValueError, which
    the YAML loader let through: `validate` ended with exit 3."""
    job = write(tmp_path, HEAD.replace("ids: [1]", "ids: [1, " + "9" * 5000 + "]"))
    assert main(["validate", str(job)]) == 2
    err = capsys.readouterr().err
    assert "line 4" in err and "5000 characters" in err and "9" * 50 not in err

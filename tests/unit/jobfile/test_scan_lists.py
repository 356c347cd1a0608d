"""The files a job names (its scan list, its pairs, its output) are checked by `validate`, each
refusal located; a run never meets an input that ends in an internal error (issue 12, point 12).
The reader's own cases are in tests/unit/modes/test_resources.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scanjobs.cli import main
from scanjobs.errors import JobError
from scanjobs.jobfile import load_job
from scanjobs.modes.analyze.run import read_pairs_csv

DOWNLOAD: dict[str, Any] = {
    "version": 1,
    "mode": "download",
    "source": "a",
    "scans": {"file": "ids.csv"},
    "instances": {"a": {}},
}
ANALYZE: dict[str, Any] = {
    **DOWNLOAD,
    "mode": "analyze",
    "target": {"instance": "a"},
    "scans": {"pairs": "p.csv"},
}


def _validate(tmp_path: Path, capsys: pytest.CaptureFixture[str], job: dict[str, Any]) -> tuple[int, str]:
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(job, indent=1), encoding="utf-8")
    code = main(["validate", str(path)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("scan_id\n12\nCaf\u00e9\n".encode("latin-1"), "line 3 is not UTF-8"),
        (b"scan_id\n12\n9223372036854775808\n", "line 3"),
        ("scan_id\n12\n\u00b2\n".encode(), "line 3"),
        (b"", "empty"),
    ],
    ids=["latin-1", "beyond-bigint", "superscript", "empty"],
)
def test_validate_refuses_a_scan_list_that_a_run_could_not_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, said: str
) -> None:
    """issue 12, point 12: `validate` said ok and the run ended in exit 3 (or exit 2 later)."""
    (tmp_path / "ids.csv").write_bytes(content)
    code, err = _validate(tmp_path, capsys, DOWNLOAD)
    assert code == 2, err
    assert "scans.file (job.yaml, line" in err and said in err


def test_a_scan_list_not_there_yet_is_left_to_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A list written after `validate`, or removed after a run (`status` still works), is read by
    the run, which refuses it then (exit 2) if it is still missing."""
    code, err = _validate(tmp_path, capsys, DOWNLOAD)
    assert code == 0, err


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("Source_Scan_ID,Target_Scan_ID\n1,2\n3,\u00e9\n".encode("latin-1"), "line 3 is not UTF-8"),
        (b"Source_Scan_ID,Target_Scan_ID\n1,2\n3,9223372036854775808\n", "line 3"),
        ("Source_Scan_ID,Target_Scan_ID\n1,2\n\u00b2,4\n".encode(), "line 3"),
        ("Source_Scan_ID,Target_Scan_ID\n1,2\n\u0663,4\n".encode(), "line 3"),
    ],
    ids=["latin-1", "beyond-bigint", "superscript", "arabic-indic"],
)
def test_validate_refuses_a_pairs_file_that_a_run_could_not_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, said: str
) -> None:
    """issue 12, point 12 (a sibling): the pairs CSV of an analyze job had the same defects; a
    superscript digit made int() raise ValueError at run time (exit 3)."""
    (tmp_path / "p.csv").write_bytes(content)
    with pytest.raises(JobError, match=said):
        read_pairs_csv(tmp_path / "p.csv")
    code, err = _validate(tmp_path, capsys, ANALYZE)
    assert code == 2, err
    assert "scans.pairs (job.yaml, line" in err and said in err


@pytest.mark.parametrize(
    "place", [("scans", "file"), ("output",), ("scans", "pairs"), ("scans", "from_job")], ids=".".join
)
def test_a_path_with_a_nul_character_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], place: tuple[str, ...]
) -> None:
    """issue 12, point 12 (a sibling): `output: "a\\0b"` made the loader raise ValueError
    (embedded null byte): `validate` itself ended with exit 3."""
    job = json.loads(json.dumps(ANALYZE if place[-1] in ("pairs", "from_job") else DOWNLOAD))
    if place[0] == "scans":
        job["scans"] = {place[1]: "a\x00b.csv"}
    else:
        job["output"] = "out\x00put"
    code, err = _validate(tmp_path, capsys, job)
    assert code == 2, err
    assert f"{'.'.join(place)} (job.yaml, line" in err and "NUL" in err


def test_a_nul_character_from_the_environment_is_refused(tmp_path: Path) -> None:
    """issue 12, point 12 (a sibling): the same NUL given by a .env value through ${VAR}."""
    (tmp_path / ".env").write_text("OUT='a\x00b'\n", encoding="utf-8")
    (tmp_path / "job.yaml").write_text(json.dumps({**DOWNLOAD, "output": "${OUT}"}), encoding="utf-8")
    with pytest.raises(JobError, match=r"output \(job.yaml, line 1\): .*NUL"):
        load_job(tmp_path / "job.yaml", environ={})


def test_a_symlink_loop_is_refused_not_a_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """issue 12, point 12 (a sibling): Path.resolve raises RuntimeError on a symlink loop, so an
    `output` (or a job path) that is one made `validate` end with exit 3."""
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    code, err = _validate(tmp_path, capsys, {**DOWNLOAD, "scans": {"ids": [1]}, "output": "loop/out"})
    assert code == 2, err
    assert "output (job.yaml, line" in err
    assert main(["validate", str(tmp_path / "loop")]) == 2
    assert "loop" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["job.yaml", "instances.yaml"])
def test_a_yaml_file_that_is_not_utf8_is_refused_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """issue 12, point 12 (a sibling): a Latin-1 job or instances.yaml was refused with a codec's
    byte position, not its line."""
    (tmp_path / "job.yaml").write_text(json.dumps({**DOWNLOAD, "scans": {"ids": [1]}}, indent=1))
    with open(tmp_path / name, "ab") as fh:
        fh.write(b"\n# caf\xe9\n")
    assert main(["validate", str(tmp_path / "job.yaml")]) == 2
    err = capsys.readouterr().err
    assert f"{name}: line" in err and "is not UTF-8" in err, err


@pytest.mark.parametrize("output", ["taken", "taken/below"])
def test_an_output_that_a_file_stands_in_the_way_of_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], output: str
) -> None:
    """issue 12, point 12 (a sibling): `output` naming a file (or a folder below one) passed
    validate; the run's mkdir then raised FileExistsError: exit 3."""
    (tmp_path / "taken").write_text("a file", encoding="utf-8")
    code, err = _validate(tmp_path, capsys, {**DOWNLOAD, "scans": {"ids": [1]}, "output": output})
    assert code == 2, err
    assert "output (job.yaml, line" in err and "not a folder" in err

"""Atomic writes: files are created as `open()` would create them (the umask decides), and a
write that would not change a file leaves it alone (issue 12, point 21)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanjobs.fsutil import atomic_open, atomic_path


@pytest.fixture()
def umask() -> Iterator[None]:
    """Restore the process's umask after a test that sets its own."""
    saved = os.umask(0o022)
    os.umask(saved)
    yield
    os.umask(saved)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_a_new_file_honours_the_umask(tmp_path: Path, umask: None, mask: int, expected: int) -> None:
    """issue 12, point 21: reports were created 0600 (mkstemp's mode) whatever the umask."""
    os.umask(mask)
    with atomic_open(tmp_path / "a.csv", "w", encoding="utf-8") as fh:
        fh.write("x\n")
    with atomic_path(tmp_path / "a.xlsx", suffix=".xlsx") as tmp:
        tmp.write_bytes(b"xlsx")
    assert mode_of(tmp_path / "a.csv") == expected
    assert mode_of(tmp_path / "a.xlsx") == expected


def test_a_private_file_stays_private(tmp_path: Path, umask: None) -> None:
    """issue 12, point 21: what holds secrets asks for 0600, and gets it whatever the umask."""
    os.umask(0o002)
    with atomic_open(tmp_path / ".env", "w", encoding="utf-8", permissions=0o600) as fh:
        fh.write("PASSWORD=x\n")
    assert mode_of(tmp_path / ".env") == 0o600


def test_an_unchanged_file_is_not_written_again(tmp_path: Path) -> None:
    """issue 12, point 21: the same content leaves the file as it was (same inode, same mtime),
    and no temporary file behind; other content replaces it."""
    path = tmp_path / "manifest.csv"
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write("a,b\n1,2\n")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    before = path.stat()
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write("a,b\n1,2\n")
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.csv"]
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write("a,b\n1,3\n")
    assert path.read_text(encoding="utf-8") == "a,b\n1,3\n"
    assert path.stat().st_mtime_ns != before.st_mtime_ns
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.csv"]


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "failures.csv"
    path.write_text("old\n", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write("new\n")
        raise RuntimeError("disk full")
    assert path.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["failures.csv"]

"""Small file-system helpers: atomic writes, new files as the umask says, containment checks."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import filecmp
import hashlib
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

__all__ = [
    "atomic_path",
    "atomic_open",
    "create_new",
    "is_inside",
    "lock_exclusive",
    "lock_holder_text",
    "same_bytes",
    "sha256_of",
]

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def create_new(folder: Path, prefix: str, suffix: str = "", *, permissions: int = 0o666) -> tuple[int, Path]:
    """Create a file of a new random name in `folder`; its descriptor (open for writing) and path.

    Created the way `open()` creates a file: `permissions` less the process's umask, applied
    by the kernel itself (tempfile.mkstemp's fixed 0600 made every report private, and reading
    the umask means setting it, which races with other threads creating files).
    """
    for _ in range(100):
        path = folder / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            return os.open(path, _CREATE_FLAGS, permissions), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name {prefix}...{suffix} in {folder}")


def same_bytes(new: Path, old: Path) -> bool:
    """True when `old` exists and holds the bytes of `new`."""
    try:
        return filecmp.cmp(new, old, shallow=False)
    except OSError:  # no old file (or an unreadable one): write
        return False


@contextlib.contextmanager
def atomic_path(
    path: Path,
    suffix: str = "",
    *,
    permissions: int = 0o666,
    same: Callable[[Path, Path], bool] = same_bytes,
) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success it replaces `path` in one rename.

    Readers see the old file or the new one, never a half-written one; on error the temp
    file is removed and `path` is untouched. When the new file is the `same` as the old one
    (byte for byte unless a format says otherwise), the old one is left as it is (same inode,
    same mtime): a rerun that changes nothing writes nothing. A new file gets `permissions`
    less the umask (pass 0o600 for a file that holds secrets).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_new(path.parent, f".{path.name}.", suffix + ".tmp", permissions=permissions)
    os.close(fd)
    try:
        yield tmp
        if same(tmp, path):
            tmp.unlink()
            return
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_open(
    path: Path, mode: str = "w", *, permissions: int = 0o666, **kwargs: object
) -> Iterator[IO[str]]:
    """Open a temp file beside `path` for writing; it replaces `path` when the block succeeds
    (see `atomic_path`: unchanged content is not written again, new files honour the umask)."""
    with (
        atomic_path(path, permissions=permissions) as tmp,
        open(tmp, mode, **kwargs) as fh,  # type: ignore[call-overload]
    ):
        yield fh


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex), read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_inside(path: Path, folder: Path) -> bool:
    """True when `path`, fully resolved, lies inside `folder` (also resolved)."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def lock_holder_text(path: Path, limit: int = 4096) -> str | None:
    """What a lock file says of its holder while a live process holds its flock, else None.

    A killed holder leaves its details in the file, but the kernel has dropped its flock: a
    shared, non-blocking probe tells which without waiting (and holds the lock only for that
    instant)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        return os.pread(fd, limit, 0).decode("utf-8", errors="replace")
    finally:
        os.close(fd)  # and with it the probe's shared flock
    return None


def lock_exclusive(fd: int, grace: float) -> bool:
    """Take the exclusive flock of `fd`; False if another process still holds it after `grace`
    seconds (a `lock_holder_text` probe holds it shared only for an instant, so it waits that
    out rather than taking the probe for a holder)."""
    give_up = time.monotonic() + grace
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        if time.monotonic() >= give_up:
            return False
        time.sleep(0.01)

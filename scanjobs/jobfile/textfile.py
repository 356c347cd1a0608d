"""The text of a file a user gives a job (.env, scan lists): UTF-8, read whole, refused with its line."""

from __future__ import annotations

import re
from pathlib import Path

from scanjobs.errors import JobError

__all__ = ["LINE_BREAK", "read_utf8"]

# What ends a line, as a shell and the csv module read it (str.splitlines also breaks at \v, \f,
# \x1c-\x1e, \x85, U+2028 and U+2029).
LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LINE_BREAK_BYTES = re.compile(rb"\r\n|\r|\n")


def read_utf8(path: Path, what: str) -> str:
    """The text of `path`, a BOM dropped.

    JobError when it is not a regular file (a FIFO or a device would block the read, or never
    end it), cannot be read, or is not UTF-8. The last names the line and does not show it: a
    .env line holds a password.
    """
    try:
        if path.exists() and not path.is_file():
            raise JobError(f"the {what} {path} is not a file")
        data = path.read_bytes()
    except OSError as exc:
        raise JobError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = len(_LINE_BREAK_BYTES.findall(data, 0, exc.start)) + 1
        raise JobError(f"{path}: line {line} is not UTF-8 text; save the {what} as UTF-8") from None

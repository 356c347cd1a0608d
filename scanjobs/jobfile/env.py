"""${VAR} expansion from the environment and an optional .env file beside the job."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from scanjobs.jobfile.textfile import LINE_BREAK, read_utf8

__all__ = ["REFERENCE", "SECRET_REFERENCE", "UnsetVariable", "expand", "read_dotenv", "env_var_for"]

# ${VAR}, ${VAR:-default}, ${VAR:?message}; $${ is a literal "${".
REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}")
# What begins a comment in an unquoted value.
_COMMENT = re.compile(r"[ \t]#")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A secret field must be one reference and nothing else.
SECRET_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}$")


class UnsetVariable(Exception):
    """A ${VAR} with no default whose variable is not set."""

    def __init__(self, var: str, message: str | None) -> None:
        super().__init__(var)
        self.var = var
        self.message = message


def expand(text: str, env: Mapping[str, str]) -> str:
    """Expand every reference in `text`; raise UnsetVariable for the first unset one."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        var, op, arg = match.group(1), match.group(2), match.group(3)
        value = env.get(var)
        if value is not None and (value != "" or op != ":-"):
            return value
        if op == ":-":
            return arg or ""
        raise UnsetVariable(var, arg if op == ":?" else None)

    return REFERENCE.sub(replace, text)


def _value(text: str) -> str:
    """The value of a line, from what follows its `=`: a quoted value is the text between its
    quotes (a comment may follow); otherwise a `#` after a space or tab begins a comment (as in
    a shell: `KEY=  # fill in` is empty, `KEY=a#b` is `a#b`), and the rest is stripped."""
    stripped = text.strip()
    quote = stripped[:1]
    if quote in ("'", '"'):
        end = stripped.find(quote, 1)
        after = stripped[end + 1 :].strip()
        if end > 0 and (not after or after.startswith("#")):
            return stripped[1:end]
    comment = _COMMENT.search(text)
    return (text[: comment.start()] if comment else text).strip()


def read_dotenv(path: Path) -> dict[str, str]:
    """Read KEY=VALUE lines (optional `export`, quotes, # comments); missing file -> {}.

    Lines end only at \\n, \\r\\n or \\r, as in a shell (str.splitlines would cut a quoted value
    at U+2028). A file that exists but cannot be read, or is not UTF-8, is a JobError: a
    password silently unset would be reported later, and far from its cause.
    """
    try:
        if not path.is_file():
            return {}  # none, or a folder of that name: nothing to read
    except OSError:
        pass  # (a name too long, ...): read_utf8 says why it cannot be read
    values: dict[str, str] = {}
    for raw in LINE_BREAK.split(read_utf8(path, ".env file")):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _NAME.fullmatch(key):
            continue
        values[key] = _value(value)
    return values


def env_var_for(instance: str, what: str) -> str:
    """The default variable of an instance's secret: ('stg-albt', 'DB_PASSWORD') -> STG_ALBT_DB_PASSWORD.

    A name may start with a digit and a variable may not (no ${3M_PASSWORD}, no `export`), so
    such a name gets a leading `_`: ('3m', 'PASSWORD') -> _3M_PASSWORD.
    """
    stem = re.sub(r"[^A-Za-z0-9]", "_", instance).upper()
    return ("_" if stem[:1].isdigit() else "") + stem + "_" + what

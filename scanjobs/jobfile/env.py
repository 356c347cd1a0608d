"""${VAR} expansion from the environment and an optional .env file beside the job."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

__all__ = ["REFERENCE", "SECRET_REFERENCE", "UnsetVariable", "expand", "read_dotenv", "env_var_for"]

# ${VAR}, ${VAR:-default}, ${VAR:?message}; $${ is a literal "${".
REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}")
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


def read_dotenv(path: Path) -> dict[str, str]:
    """Read KEY=VALUE lines (optional `export`, quotes, # comments); missing file -> {}."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def env_var_for(instance: str, what: str) -> str:
    """The default variable of an instance's secret: ('stg-albt', 'DB_PASSWORD') -> STG_ALBT_DB_PASSWORD."""
    return re.sub(r"[^A-Za-z0-9]", "_", instance).upper() + "_" + what

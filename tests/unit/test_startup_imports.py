"""What a run imports before its first request: nothing that only reports, the sandbox or
another command need (issue 14: from process start to the first platform request under 0.5 s).

Each check runs in a fresh interpreter, since this one has imported everything by now.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Loaded later, or never, by a copy or download run: reports (pandas, numpy, openpyxl), progress
# bars (rich: only on a terminal), the sandbox (aiohttp), notifications (apprise: when a run ends),
# and the files behind `init`.
LATER = (
    "pandas",
    "numpy",
    "openpyxl",
    "rich",
    "aiohttp",
    "apprise",
    "scanjobs.report",
    "scanjobs.sandbox",
    "scanjobs.demo",
    "scanjobs.templates",
    "scanjobs.sandboxjobs",
)
# Loaded only by the commands that talk to the platform (`validate` and `status` never do).
PLATFORM = ("psycopg", "requests", "urllib3", "tenacity", "scanjobs.platform")
# Loaded only when a run opens the API: a run reaches the database first (80 ms sooner without
# them), and a rerun of a finished job never opens it.
HTTP = ("requests", "urllib3", "scanjobs.platform.api", "scanjobs.platform.http")


def imported_by(*modules: str) -> set[str]:
    """The modules a fresh interpreter holds after importing `modules`."""
    code = f"import json, sys\nimport {', '.join(modules)}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(done.stdout))


def among(loaded: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(m for m in loaded if m in packages or m.startswith(tuple(p + "." for p in packages)))


def test_the_command_line_loads_no_platform_client_nor_later_work() -> None:
    assert among(imported_by("scanjobs.cli"), LATER + PLATFORM) == []


def test_a_run_loads_nothing_it_needs_only_later() -> None:
    """`scanjobs run`: the command line, then lifecycle with every mode (the registry is static)."""
    assert among(imported_by("scanjobs.cli", "scanjobs.lifecycle"), LATER + HTTP) == []

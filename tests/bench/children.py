"""What the benches' scanjobs processes run with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def child_env(cache: Path) -> dict[str, str]:
    """The children's environment, with a bytecode cache as an installed scanjobs has (compiled
    at install), filled by one import of what a run loads; without one (PYTHONDONTWRITEBYTECODE,
    as on this machine), every start would compile scanjobs again. The checkout comes first on
    the path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    env["PYTHONPATH"] = str(ROOT)
    subprocess.run(
        [sys.executable, "-c", "import scanjobs.cli, scanjobs.lifecycle"], cwd=ROOT, env=env, check=True
    )
    return env

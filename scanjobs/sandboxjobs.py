"""Point jobs at a running sandbox: instances.yaml (no secrets) + .env (the secrets) in a folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from scanjobs.fsutil import atomic_open
from scanjobs.spec.env import env_var_for

__all__ = ["read_sandbox_info", "write_sandbox_instances"]


def read_sandbox_info(sandbox_dir: Path) -> dict[str, Any]:
    info: dict[str, Any] = json.loads((sandbox_dir / "sandbox.json").read_text(encoding="utf-8"))
    return info


def write_sandbox_instances(info: dict[str, Any], folder: Path, *, prefix: str = "sandbox-") -> dict[str, str]:
    """Write `instances.yaml` and `.env` so that jobs in `folder` can name `sandbox-source` and
    `sandbox-target`; return {role: instance name}. The .env is private (mode 600)."""
    folder.mkdir(parents=True, exist_ok=True)
    instances: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    names: dict[str, str] = {}
    for role, inst in info["instances"].items():
        name = f"{prefix}{role}"
        names[role] = name
        db = inst["db"]
        instances[name] = {
            "api_url": inst["api_url"],
            "db": {"host": db["host"], "port": int(db["port"]), "dbname": db["dbname"], "user": db["user"],
                   "password": "${" + env_var_for(name, "DB_PASSWORD") + "}"},
            "username": inst["username"],
            "password": "${" + env_var_for(name, "PASSWORD") + "}",
        }
        secrets[env_var_for(name, "DB_PASSWORD")] = db["password"]
        secrets[env_var_for(name, "PASSWORD")] = inst["password"]
    with atomic_open(folder / "instances.yaml", "w", encoding="utf-8") as fh:
        fh.write("# The local sandbox's instances (written by scanjobs; secrets are in .env beside).\n")
        yaml.safe_dump(instances, fh, sort_keys=False)
    env_path = folder / ".env"
    with atomic_open(env_path, "w", encoding="utf-8") as fh:
        fh.write("# Sandbox credentials (local only, regenerated with each sandbox).\n")
        fh.writelines(f"{k}={v}\n" for k, v in secrets.items())
    os.chmod(env_path, 0o600)
    return names

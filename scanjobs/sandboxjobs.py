"""Point jobs at a running sandbox: instances.yaml (no secrets) + .env (the secrets) in a folder."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import yaml

from scanjobs.errors import JobError
from scanjobs.fsutil import atomic_open
from scanjobs.jobfile import schema_path
from scanjobs.jobfile.env import env_var_for

__all__ = ["read_sandbox_info", "write_sandbox_instances", "sandbox_job_text"]

_RETRY = "{attempts: 4, backoff: {initial: 0.2, max: 5}, timeout: {connect: 5, read: 30}, deadline: 2m}"


def read_sandbox_info(sandbox_dir: Path, *, wait: float = 0.0) -> dict[str, Any]:
    """DIR/sandbox.json; with `wait`, poll for it that long (a sandbox just started)."""
    path = sandbox_dir / "sandbox.json"
    deadline = time.monotonic() + wait
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    if not path.exists():
        raise JobError(
            f"no sandbox at {sandbox_dir} ({path} not found)",
            hint=f"start one: scanjobs sandbox up --dir {sandbox_dir}",
        )
    info: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return info


def sandbox_job_text(
    mode: str,
    info: dict[str, Any],
    *,
    scans: int = 12,
    name: str | None = None,
    output: str | None = None,
    copy_job: str = "copy.yaml",
) -> str:
    """A small commented job of `mode` against the sandbox (instances from instances.yaml beside)."""
    ids = ", ".join(str(i) for i in list(info["source_scan_ids"])[:scans])
    lines = [f"# yaml-language-server: $schema={_schema_ref()}"]
    if mode == "copy":
        lines += [
            '# Copy sandbox "production" scans into the sandbox "staging" store, then compare.',
            "version: 1",
            "mode: copy",
            f"name: {name or 'sandbox-copy'}",
            "source: sandbox-source",
            f"target: {{instance: sandbox-target, store: {int(info['target_store_id'])}}}",
            f"scans: {{ids: [{ids}]}}",
            "copy: {strategy: auto, captured_at: now}",
            "batch: {size: 10, workers: {download: 20, upload: 20, create: 10}}",
            f"retry: {_RETRY}",
            "analysis: {enabled: true, wait_for_processing: 2m}",
            f"output: {output or 'results/copy'}",
        ]
    elif mode == "download":
        lines += [
            "# Download every image of these sandbox scans, named {scan}_{section}_{store POG}.",
            "version: 1",
            "mode: download",
            f"name: {name or 'sandbox-download'}",
            "source: sandbox-source",
            f"scans: {{ids: [{ids}]}}",
            f"retry: {_RETRY}",
            f"output: {output or 'results/images'}",
        ]
    else:
        lines += [
            "# Compare the pairs a copy job recorded (or: scans: {pairs: scan_mapping.csv}).",
            "version: 1",
            "mode: analyze",
            f"name: {name or 'sandbox-analyze'}",
            "source: sandbox-source",
            "target: {instance: sandbox-target}",
            f"scans: {{from_job: {copy_job}}}",
            "analysis: {wait_for_processing: 2m}",
            f"output: {output or 'results/analysis'}",
        ]
    return "\n".join(lines) + "\n"


def _schema_ref() -> str:
    return str(schema_path().resolve())


def write_sandbox_instances(
    info: dict[str, Any], folder: Path, *, prefix: str = "sandbox-"
) -> dict[str, str]:
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
            "db": {
                "host": db["host"],
                "port": int(db["port"]),
                "dbname": db["dbname"],
                "user": db["user"],
                "password": "${" + env_var_for(name, "DB_PASSWORD") + "}",
            },
            "username": inst["username"],
            "password": "${" + env_var_for(name, "PASSWORD") + "}",
        }
        secrets[env_var_for(name, "DB_PASSWORD")] = db["password"]
        secrets[env_var_for(name, "PASSWORD")] = inst["password"]
    with atomic_open(folder / "instances.yaml", "w", encoding="utf-8") as fh:
        fh.write("# The local sandbox's instances (written by scanjobs; secrets are in .env beside).\n")
        yaml.safe_dump(instances, fh, sort_keys=False)
    env_path = folder / ".env"
    with atomic_open(env_path, "w", encoding="utf-8", permissions=0o600) as fh:
        fh.write("# Sandbox credentials (local only, regenerated with each sandbox).\n")
        fh.writelines(f"{k}={v}\n" for k, v in secrets.items())
    os.chmod(env_path, 0o600)
    return names

"""Point jobs at a running sandbox: instances.yaml (no secrets) + .env (the secrets) in a folder.

Both files may be the user's own: the sandbox's entries are added to them, the rest is kept
byte for byte, and a conflicting entry is refused (or, with `force`, replaced alone).
"""

from __future__ import annotations

import contextlib
import json
import re
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from scanjobs.errors import JobError
from scanjobs.fsutil import atomic_path
from scanjobs.jobfile.env import env_var_for, read_dotenv
from scanjobs.jobfile.loader import INSTANCES_FILE
from scanjobs.jobfile.yamlio import load_yaml
from scanjobs.jobrepo import schema_home, write_schema

__all__ = [
    "PlannedWrite",
    "plan_sandbox_instances",
    "read_sandbox_info",
    "sandbox_instances",
    "sandbox_job_text",
    "write_all",
    "write_sandbox_instances",
    "write_sandbox_job",
]

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
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise JobError(f"{path} cannot be read: {exc}", hint=_RESTART) from None
    problem = next(jsonschema.Draft202012Validator(_INFO_SCHEMA).iter_errors(info), None)
    if problem is not None:
        where = "/".join(str(p) for p in problem.absolute_path) or "the top"
        # the message quotes the value, which may be a password: only the place is said
        raise JobError(f"{path} is not what a sandbox writes (at {where})", hint=_RESTART)
    return dict(info)


_RESTART = "restart the sandbox (scanjobs sandbox down --dir DIR, then up)"
# What init takes from sandbox.json. Secrets become .env lines: no quote, space, # or newline.
_SECRET = {"type": "string", "pattern": "^[A-Za-z0-9._~+/=-]{1,200}$"}
_INSTANCE = {
    "type": "object",
    "required": ["api_url", "db", "username", "password"],
    "properties": {
        "api_url": {"type": "string", "pattern": "^https?://[^\\s]+$"},
        "username": {"type": "string", "minLength": 1, "maxLength": 200},
        "password": _SECRET,
        "db": {
            "type": "object",
            "required": ["host", "port", "dbname", "user", "password"],
            "properties": {
                "host": {"type": "string", "minLength": 1, "maxLength": 255},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "dbname": {"type": "string", "minLength": 1, "maxLength": 63},
                "user": {"type": "string", "minLength": 1, "maxLength": 63},
                "password": _SECRET,
            },
        },
    },
}
_INFO_SCHEMA = {
    "type": "object",
    "required": ["instances", "source_scan_ids", "target_store_id"],
    "properties": {
        "instances": {
            "type": "object",
            "required": ["source", "target"],
            "properties": {"source": _INSTANCE, "target": _INSTANCE},
            "additionalProperties": False,
        },
        "source_scan_ids": {"type": "array", "items": {"type": "integer", "minimum": 1}},
        "target_store_id": {"type": "integer", "minimum": 1},
    },
}


def sandbox_job_text(
    mode: str,
    info: dict[str, Any],
    *,
    scans: int = 12,
    name: str | None = None,
    output: str | None = None,
    copy_job: str = "copy.yaml",
    schema_ref: str = "schemas/job.schema.json",
) -> str:
    """A small commented job of `mode` against the sandbox (instances from instances.yaml beside)."""
    ids = ", ".join(str(i) for i in list(info["source_scan_ids"])[:scans])
    lines = [f"# yaml-language-server: $schema={schema_ref}"]
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
            "batch: {workers: {download: 20, upload: 20, create: 10}}   # size: what keeps them busy",
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
    elif mode == "compare":
        lines += [
            "# Compare two analyses of the same scans, row by row: what improved, what regressed.",
            "version: 1",
            "mode: compare",
            f"name: {name or 'sandbox-compare'}",
            f"compare: {{baseline: {copy_job}, candidate: analyze.yaml, gate: {{regressed: 0}}}}",
            f"output: {output or 'results/compare'}",
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


def sandbox_instances(
    info: dict[str, Any], *, prefix: str = "sandbox-"
) -> tuple[dict[str, Any], dict[str, str]]:
    """The `instances.yaml` entries (no secrets) and `.env` variables of a running sandbox."""
    instances: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for role, inst in info["instances"].items():
        name = f"{prefix}{role}"
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
        secrets[env_var_for(name, "DB_PASSWORD")] = str(db["password"])
        secrets[env_var_for(name, "PASSWORD")] = str(inst["password"])
    return instances, secrets


def write_sandbox_instances(
    info: dict[str, Any], folder: Path, *, prefix: str = "sandbox-", force: bool = False
) -> dict[str, str]:
    """Add the sandbox's instances to `instances.yaml` and their secrets to `.env` in `folder`,
    so that jobs there can name `sandbox-source` and `sandbox-target`; return {role: name}.

    The user's own entries stay byte for byte. An entry of the same name that differs is a
    JobError naming the file and the key (never the value), unless `force`, which replaces
    that entry only. Nothing is written unless both files can be.
    """
    folder.mkdir(parents=True, exist_ok=True)
    write_all(plan_sandbox_instances(info, folder, prefix=prefix, force=force))
    return {role: f"{prefix}{role}" for role in info["instances"]}


def plan_sandbox_instances(
    info: dict[str, Any], folder: Path, *, prefix: str = "sandbox-", force: bool = False
) -> list[PlannedWrite]:
    """What `write_sandbox_instances` would write (only the files that change); raises on a conflict."""
    instances, secrets = sandbox_instances(info, prefix=prefix)
    writes = [
        _merge_instances(folder / INSTANCES_FILE, instances, force),
        _merge_env(folder / ".env", secrets, force),
    ]
    return [w for w in writes if w is not None]


def write_sandbox_job(
    mode: str, path: Path, sandbox_dir: Path, *, force: bool = False, output: str | None = None
) -> Path:
    """`init MODE PATH --sandbox DIR`: a job against that sandbox (writing into `output`) plus
    its instances and secrets beside it, each file checked before any is written; then the
    schema its modeline names (see `schema_home`)."""
    info = read_sandbox_info(sandbox_dir, wait=60)
    ref, schema = schema_home(path)
    writes = plan_sandbox_instances(info, path.parent, force=force)
    text = sandbox_job_text(mode, info, output=output, schema_ref=ref)
    writes.append(PlannedWrite(path, text, _kept_mode(path, 0o644)))
    write_all(writes)
    write_schema(schema)
    return path


@dataclass(frozen=True)
class PlannedWrite:
    """A file's whole new text and mode; `check` reads the staged file back and raises a
    JobError when it does not say what was meant (the old file then stays)."""

    path: Path
    text: str
    mode: int
    check: Callable[[Path], None] | None = None


def write_all(writes: list[PlannedWrite]) -> None:
    """Stage every file beside its target (written and checked), then rename each into place:
    a refusal while staging leaves every file as it was."""
    with contextlib.ExitStack() as staged:
        for write in writes:
            # Through a symbolic link: a .env linked to a shared secrets file is updated there.
            path = write.path.resolve() if write.path.is_symlink() else write.path
            # created with its final mode: a secrets file is never readable by others, even briefly
            tmp = staged.enter_context(atomic_path(path, permissions=write.mode))
            tmp.write_text(write.text, encoding="utf-8")
            tmp.chmod(write.mode)
            if write.check is not None:
                write.check(tmp)


def _kept_mode(path: Path, default: int) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return default


def _read_text(path: Path) -> str | None:
    """The file's text, None when it does not exist; a JobError when it cannot be read as UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise JobError(f"cannot add the sandbox to {path}: {exc}", hint=_MOVE_ASIDE) from None


_MOVE_ASIDE = "fix the file, or write the job into another folder"
_FORCE = "add --force to replace the sandbox's entries (and only those), or remove them from the file"


def _refuse(path: Path, what: str) -> JobError:
    return JobError(f"cannot add the sandbox to {path}: {what}; it was left as it is", hint=_MOVE_ASIDE)


def _parse_instances(text: str, path: Path) -> Any:
    try:
        data, _lines, problems = load_yaml(text, path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise _refuse(path, f"invalid YAML{f' at line {mark.line + 1}' if mark else ''}") from None
    if problems:
        raise _refuse(path, problems[0])
    return data


def _merge_instances(path: Path, wanted: dict[str, Any], force: bool) -> PlannedWrite | None:
    """instances.yaml with `wanted` added (or, with `force`, replaced), the rest untouched."""
    text = _read_text(path)
    if text is None:
        return PlannedWrite(path, _INSTANCES_HEADER + yaml.safe_dump(wanted, sort_keys=False), 0o600)
    data = _parse_instances(text, path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _refuse(path, "it is not a mapping of instance name -> settings")
    differ = {n: spec for n, spec in wanted.items() if n in data and data[n] != spec}
    if differ and not force:
        name = next(iter(differ))
        old = data[name] if isinstance(data[name], dict) else {}
        fields = sorted(k for k in {*old, *differ[name]} if old.get(k) != differ[name].get(k))
        raise JobError(
            f"{path} already defines instance {name!r} differently"
            + (f" ({', '.join(str(f) for f in fields)})" if fields else "")
            + "; nothing was written",
            hint=_FORCE,
        )
    added = {n: spec for n, spec in wanted.items() if n not in data}
    if not added and not differ:
        return None
    new = text
    if differ:  # replaced from the end, so that earlier offsets stay right
        spans = _top_level_spans(text)
        for name in sorted(differ, key=lambda n: spans[n][0], reverse=True):
            begin, end = spans[name]
            new = new[:begin] + yaml.safe_dump({name: differ[name]}, sort_keys=False) + new[end:]
    if added:
        if new and not new.endswith("\n"):
            new += "\n"
        new += _INSTANCES_ADDED + yaml.safe_dump(added, sort_keys=False)
    expected = {**data, **differ, **added}

    def check(tmp: Path) -> None:
        if _parse_instances(tmp.read_text(encoding="utf-8"), path) != expected:
            raise _refuse(path, "its layout (a {...} mapping?) cannot be extended without rewriting it")

    return PlannedWrite(path, new, _kept_mode(path, 0o600), check)


def _top_level_spans(text: str) -> dict[str, tuple[int, int]]:
    """{key: (start, end)} of each top-level entry's text: from the start of its key's line to
    the end of its value, without the comments and blank lines that follow it."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    spans: dict[str, tuple[int, int]] = {}
    assert isinstance(root, yaml.MappingNode)
    for key, value in root.value:
        begin = key.start_mark.index - key.start_mark.column
        end = value.end_mark.index
        if end > 0 and text[end - 1] != "\n":  # a flow or scalar value: take the rest of its line
            line_end = text.find("\n", end)
            line_end = len(text) if line_end < 0 else line_end + 1
            rest = text[end:line_end].strip()
            if not rest or rest.startswith("#"):
                end = line_end
        body = text[begin:end].splitlines(keepends=True)
        while len(body) > 1 and (not body[-1].strip() or body[-1].lstrip().startswith("#")):
            end -= len(body.pop())
        spans[str(key.value)] = (begin, end)
    return spans


def _merge_env(path: Path, wanted: dict[str, str], force: bool) -> PlannedWrite | None:
    """.env with the `wanted` variables added (or, with `force`, replaced), the rest untouched."""
    text = _read_text(path)
    if text is None:
        return PlannedWrite(path, _ENV_HEADER + "".join(f"{k}={v}\n" for k, v in wanted.items()), 0o600)
    try:
        current = read_dotenv(path)
    except (JobError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise _refuse(path, str(exc).splitlines()[0]) from None
    differ = [k for k, v in wanted.items() if k in current and current[k] != v]
    if differ and not force:
        raise JobError(f"{path} already sets {differ[0]} to another value; nothing was written", hint=_FORCE)
    added = [k for k in wanted if k not in current]
    if not added and not differ:
        return None
    lines = text.splitlines(keepends=True)
    for key in differ:
        defines = re.compile(rf"\s*(?:export\s+)?{re.escape(key)}\s*=")
        lines = [
            f"{key}={wanted[key]}" + line[len(line.rstrip("\r\n")) :] if defines.match(line) else line
            for line in lines
        ]
    new = "".join(lines)
    if added:
        if new and not new.endswith("\n"):
            new += "\n"
        new += _ENV_ADDED + "".join(f"{k}={wanted[k]}\n" for k in added)
    expected = {**current, **wanted}

    def check(tmp: Path) -> None:
        if read_dotenv(tmp) != expected:
            raise _refuse(path, "its lines cannot be extended without rewriting them")

    return PlannedWrite(path, new, _kept_mode(path, 0o600), check)


_INSTANCES_HEADER = "# The local sandbox's instances (written by scanjobs; secrets are in .env beside).\n"
_INSTANCES_ADDED = "\n# The local sandbox's instances (added by scanjobs; secrets are in .env beside).\n"
_ENV_HEADER = "# Sandbox credentials (local only; the sandbox keeps them across restarts of its folder).\n"
_ENV_ADDED = "# Sandbox credentials (added by scanjobs; local only).\n"

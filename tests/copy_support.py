"""Shared by the copy tests: job files beside a sandbox, and independent SQL checks of a copy."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
import yaml

from scanjobs.sandbox import Sandbox
from scanjobs.sandboxjobs import write_sandbox_instances

SCAN = "realograms_implementation_scan"
SCANFILE = "realograms_implementation_scanfile"
FILE = "master_data_implementation_fileupload"
HINTS = ("category_id", "section_id", "store_planogram", "aisle", "replace_id")
NEVER_COPIED = ("id", "created_at", "updated_at", "task_id")
REPO = Path(__file__).resolve().parents[1]


def write_copy_job(
    folder: Path,
    sb: Sandbox,
    *,
    store: int,
    scan_ids: Sequence[int],
    name: str = "copy",
    strategy: str = "auto",
    **sections: Any,
) -> Path:
    """A copy job `folder/name.yaml` naming the sandbox's instances (instances.yaml + .env beside).

    Retries are quick (tests wait for nothing) and analysis is off unless `sections` say otherwise;
    each keyword replaces one top-level section of the job, or leaves it out when None (the
    job's defaults then apply).
    """
    write_sandbox_instances(sb.info, folder)
    job: dict[str, Any] = {
        "version": 1,
        "mode": "copy",
        "name": name,
        "source": "sandbox-source",
        "target": {"instance": "sandbox-target", "store": store},
        "scans": {"ids": list(scan_ids)},
        "copy": {"strategy": strategy, "captured_at": "now"},
        "batch": {"size": 10, "workers": {"download": 20, "upload": 20, "create": 10}},
        "retry": {
            "attempts": 6,
            "backoff": {"initial": 0.05, "max": 0.5},
            "timeout": {"connect": 5, "read": 10},
        },
        "analysis": {"enabled": False},
        "output": f"out-{name}",
    }
    job.update(sections)
    job = {key: value for key, value in job.items() if value is not None}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    return path


def output_dir(job_path: Path) -> Path:
    return job_path.parent / f"out-{job_path.stem}"


def read_mapping(job_path: Path) -> dict[int, int]:
    """scan_mapping.csv as {source: target}; a source listed twice is an error."""
    with open(output_dir(job_path) / "scan_mapping.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    pairs = {int(r["Source_Scan_ID"]): int(r["Target_Scan_ID"]) for r in rows}
    assert len(pairs) == len(rows), f"a source scan is mapped twice: {rows}"
    return pairs


def read_failures(job_path: Path) -> dict[int, dict[str, str]]:
    with open(output_dir(job_path) / "failures.csv", newline="", encoding="utf-8") as fh:
        return {int(r["scan_id"]): r for r in csv.DictReader(fh)}


def query(sb: Sandbox, instance: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(**sb.db(instance)) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def scans_in_store(sb: Sandbox, store: int) -> dict[int, dict[str, Any]]:
    """{target scan id: its `_raw_data`} of every scan in a target store."""
    rows = query(
        sb, "target", f"SELECT id, provided_values->'_raw_data' FROM {SCAN} WHERE store_id = %s", store
    )
    return {r[0]: r[1] for r in rows}


def uploads_in_store(sb: Sandbox, store: int) -> int:
    """Files uploaded for a store (scanjobs sends `store` with every upload)."""
    return int(query(sb, "target", f"SELECT count(*) FROM {FILE} WHERE store_id = %s", store)[0][0])


def scan_files(sb: Sandbox, instance: str, scan_ids: Sequence[int]) -> dict[int, list[tuple[int, str, int]]]:
    """{scan id: [(file id, checksum (MD5 hex), size)] in the scan's file order}."""
    rows = query(
        sb,
        instance,
        f"SELECT sf.scan_id, f.id, f.checksum, f.size FROM {SCANFILE} sf "
        f"JOIN {FILE} f ON f.id = sf.file_id WHERE sf.scan_id = ANY(%s) ORDER BY sf.id",
        list(scan_ids),
    )
    out: dict[int, list[tuple[int, str, int]]] = {int(s): [] for s in scan_ids}
    for scan_id, file_id, checksum, size in rows:
        out[scan_id].append((file_id, checksum, size))
    return out


def source_raw(sb: Sandbox, scan_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    rows = query(sb, "source", f"SELECT id, provided_values FROM {SCAN} WHERE id = ANY(%s)", list(scan_ids))
    return {r[0]: (r[1].get("_raw_data", r[1])) for r in rows}


def expected_hints(sb: Sandbox, raw: dict[str, Any], store: int) -> dict[str, int]:
    """The source's hint ids translated by name with our own SQL: what `mapped` must send."""
    out: dict[str, int] = {}
    pog = query(
        sb,
        "source",
        "SELECT p.name FROM planograms_implementation_planogramstore ps JOIN "
        "planograms_implementation_planogram p ON p.id = ps.planogram_id WHERE ps.id = %s",
        raw["store_planogram"],
    )[0][0]
    out["store_planogram"] = query(
        sb,
        "target",
        "SELECT ps.id FROM planograms_implementation_planogramstore ps JOIN "
        "planograms_implementation_planogram p ON p.id = ps.planogram_id WHERE ps.store_id = %s "
        "AND p.name = %s",
        store,
        pog,
    )[0][0]
    pog_name, section = query(
        sb,
        "source",
        "SELECT p.name, s.name FROM planograms_implementation_planogramsection s JOIN "
        "planograms_implementation_planogram p ON p.id = s.planogram_id WHERE s.id = %s",
        raw["section_id"],
    )[0]
    out["section_id"] = query(
        sb,
        "target",
        "SELECT s.id FROM planograms_implementation_planogramsection s JOIN "
        "planograms_implementation_planogram p ON p.id = s.planogram_id WHERE p.name = %s AND s.name = %s",
        pog_name,
        section,
    )[0][0]
    category = query(
        sb, "source", "SELECT name FROM master_data_implementation_category WHERE id = %s", raw["category_id"]
    )[0][0]
    out["category_id"] = query(
        sb, "target", "SELECT id FROM master_data_implementation_category WHERE name = %s", category
    )[0][0]
    return out


def assert_copied(
    sb: Sandbox,
    job_path: Path,
    store: int,
    scan_ids: Sequence[int],
    *,
    strategy: str = "auto",
    captured_between: tuple[float, float] | None = None,
) -> dict[int, int]:
    """The store holds exactly one target scan per source scan, files byte-identical in source
    order, payloads by the strategy's rules; scan_mapping.csv says the same. Returns the mapping."""
    mapping = read_mapping(job_path)
    assert sorted(mapping) == sorted(scan_ids), "scan_mapping.csv must list every source scan once"
    in_store = scans_in_store(sb, store)
    assert len(in_store) == len(scan_ids), f"{len(in_store)} target scans for {len(scan_ids)} sources"
    assert sorted(mapping.values()) == sorted(in_store), "the mapping must name the store's scans, once each"
    source_files = scan_files(sb, "source", scan_ids)
    target_files = scan_files(sb, "target", list(in_store))
    raws = source_raw(sb, scan_ids)
    for source_id, target_id in mapping.items():
        src, dst = source_files[source_id], target_files[target_id]
        assert [(c, n) for _, c, n in dst] == [(c, n) for _, c, n in src], f"files of {source_id} differ"
        payload = in_store[target_id]
        assert payload["store"] == store
        assert payload["files"] == [f for f, _, _ in dst], "files: the new ids in source order"
        assert not set(NEVER_COPIED) & set(payload), payload
        if strategy == "auto":
            assert not set(HINTS) & set(payload), f"auto keeps no mapping hint: {payload}"
        else:
            want = expected_hints(sb, raws[source_id], store)
            got = {k: payload.get(k) for k in want}
            assert got == want, f"scan {source_id}: hints {got}, target ids by name {want}"
            assert payload.get("aisle") == raws[source_id]["aisle"]
            assert payload.get("replace_id") is None
        if captured_between is not None:
            assert captured_between[0] - 1 <= payload["captured_at"] <= captured_between[1] + 1
    return mapping


def assert_bytes_identical(sb: Sandbox, pairs: dict[int, int]) -> None:
    """Download both sides' files through the API and compare the bytes themselves."""
    import requests

    def fetch(instance: str, file_id: int) -> bytes:
        inst = sb.info["instances"][instance]
        api = inst["api_url"]
        login = {"username": inst["username"], "password": inst["password"]}
        token = requests.post(f"{api}/api/v4/token-auth/", json=login, timeout=10).json()["token"]
        meta = requests.get(
            f"{api}/api/v1/master-data/file-upload/{file_id}/",
            timeout=10,
            headers={"Authorization": f"Token {token}"},
        ).json()
        return requests.get(meta["file"], timeout=30).content

    source_files = scan_files(sb, "source", list(pairs))
    target_files = scan_files(sb, "target", list(pairs.values()))
    for source_id, target_id in pairs.items():
        for (sf, _, _), (tf, _, _) in zip(source_files[source_id], target_files[target_id], strict=True):
            assert fetch("source", sf) == fetch("target", tf), f"file {sf} -> {tf} differs"


def scanjobs_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "scanjobs", *args]


def spawn(job_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`scanjobs run JOB` as a child process (SIGINT at its default, so the runner can take it)."""
    log = open(job_path.with_suffix(".out"), "ab")  # noqa: SIM115 - the child owns it
    try:
        return subprocess.Popen(
            scanjobs_cmd("run", str(job_path), *args),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    finally:
        log.close()


def run_to_end(job_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> int:
    proc = spawn(job_path, *args, env=env)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def wait_until(check: Callable[[], bool], deadline_s: float, what: str) -> None:
    end = time.monotonic() + deadline_s
    delay = 0.01
    while not check():
        assert time.monotonic() < end, f"{what}: not before the {deadline_s}s deadline"
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)


def output_of(job_path: Path) -> str:
    path = job_path.with_suffix(".out")
    return path.read_text(errors="replace") if path.exists() else ""

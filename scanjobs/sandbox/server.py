"""`sandbox up`: start PostgreSQL, seed both instances, serve their APIs until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import random
import secrets
import shutil
import signal
import socket
import sys
import time
from collections.abc import Coroutine
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import psycopg
from aiohttp import web

from scanjobs.fsutil import atomic_open
from scanjobs.sandbox.api import build_app
from scanjobs.sandbox.faults import RuntimeConfig, Stats
from scanjobs.sandbox.instance import Instance, Pool
from scanjobs.sandbox.options import SandboxOptions
from scanjobs.sandbox.postgres import EmbeddedPostgres
from scanjobs.sandbox.processing import process_scan
from scanjobs.sandbox.seed_master import master_spec, seed_target
from scanjobs.sandbox.seed_scans import SeedResult, seed_source
from scanjobs.sandbox.tables import reset_sequences

log = logging.getLogger("scanjobs.sandbox")
INSTANCES = ("source", "target")
DB_USER = "proxyuser"
API_USER = "qa"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ports(port_base: int) -> tuple[int, int, int]:
    if port_base:
        return port_base, port_base + 1, port_base + 2
    return _free_port(), _free_port(), _free_port()


def _prepare_databases(
    pg: EmbeddedPostgres, options: SandboxOptions, db_password: str
) -> tuple[SeedResult, int]:
    """(Re)create both databases with the schema and the seed; the seed makes them repeatable."""
    with psycopg.connect(pg.conninfo("postgres"), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (DB_USER,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        admin.execute(f"{verb} ROLE {DB_USER} LOGIN PASSWORD '{db_password}'")
        for name in INSTANCES:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.execute(f"CREATE DATABASE {name}")
    storage = options.dir / "storage"
    shutil.rmtree(storage, ignore_errors=True)
    schema = (Path(__file__).parent / "schema.sql").read_text()
    rng = random.Random(options.seed)
    spec = master_spec(rng)
    today = dt.datetime.now(dt.timezone.utc).date()
    result = SeedResult()
    for name in INSTANCES:
        (storage / name).mkdir(parents=True, exist_ok=True)
        with psycopg.connect(pg.conninfo(name)) as conn, conn.cursor() as cur:
            cur.execute(schema.encode())  # a script of several statements, no params
            if name == "source":
                result, _ = seed_source(
                    cur,
                    spec,
                    random.Random(rng.random()),
                    storage / name,
                    options.scans,
                    options.files_per_scan,
                    options.file_bytes,
                    options.seed,
                    today,
                )
            else:
                result.target_store_id, _ = seed_target(cur, spec, random.Random(rng.random()), today)
            reset_sequences(cur, name)
            # Read-only, like the real platform's proxyuser: a stray write is a test failure.
            cur.execute(f"GRANT CONNECT ON DATABASE {name} TO {DB_USER}")
            cur.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {DB_USER}")
    return result, result.target_store_id


async def _serve(options: SandboxOptions, stop: asyncio.Event) -> int:
    started = time.monotonic()
    directory = options.dir.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    info_path = directory / "sandbox.json"
    info_path.unlink(missing_ok=True)
    ports = _ports(options.port_base)
    pg = EmbeddedPostgres(directory / "pg", ports[2])
    runners: list[web.AppRunner] = []
    instances: list[Instance] = []
    try:
        await asyncio.to_thread(pg.start)
        await asyncio.to_thread(pg.wait_ready)
        db_password = secrets.token_hex(12)
        result, target_store = await asyncio.to_thread(
            _prepare_databases, pg, replace_dir(options, directory), db_password
        )
        if stop.is_set():
            return 0
        config = RuntimeConfig(
            fault_rate=options.fault_rate,
            latency_ms=options.latency_ms,
            processing_delay=options.processing_delay,
            ma_accuracy=options.ma_accuracy,
            hang_seconds=options.hang_seconds,
        )
        info: dict[str, Any] = {"instances": {}}
        for n, name in enumerate(INSTANCES):
            pool = Pool(pg.conninfo(name))
            await pool.open()
            inst = Instance(
                name=name,
                pool=pool,
                storage=directory / "storage" / name,
                username=API_USER,
                password=secrets.token_hex(8),
                user_id=7 + n,
                template_store_id=target_store if name == "target" else result.source_store_ids[0],
                seed=options.seed,
                config=config,
                stats=Stats(),
                truth=result.by_checksum,
                api_url=f"http://127.0.0.1:{ports[n]}",
            )
            inst.process = process_scan
            instances.append(inst)
            runner = web.AppRunner(build_app(inst), access_log=None)
            await runner.setup()
            runners.append(runner)
            site = web.TCPSite(runner, "127.0.0.1", ports[n], shutdown_timeout=0.5)
            await site.start()
            info["instances"][name] = {
                "api_url": inst.api_url,
                "db": {
                    "host": "127.0.0.1",
                    "port": pg.port,
                    "dbname": name,
                    "user": DB_USER,
                    "password": db_password,
                },
                "username": inst.username,
                "password": inst.password,
            }
        for inst in instances:
            inst.peers = instances
        info.update(
            source_scan_ids=result.source_scan_ids,
            source_store_ids=result.source_store_ids,
            target_store_id=target_store,
            empty_scan_ids=result.empty_scan_ids,
            shared_file_scan_ids=result.shared_file_scan_ids,
            pid=os.getpid(),
            seed=options.seed,
            options={
                k: str(v) if isinstance(v, Path) else v
                for k, v in asdict(replace_dir(options, directory)).items()
            },
        )
        with atomic_open(info_path) as fh:
            json.dump(info, fh, indent=2)
        print(
            f"sandbox ready: source {instances[0].api_url}, target {instances[1].api_url}"
            f" ({info_path}) in {time.monotonic() - started:.1f}s",
            flush=True,
        )
        await stop.wait()
        return 0
    finally:
        for runner in runners:
            with contextlib.suppress(Exception):
                await runner.cleanup()
        for inst in instances:
            for task in list(inst.tasks):
                task.cancel()
            await asyncio.gather(*inst.tasks, return_exceptions=True)
            await inst.pool.close()
        await asyncio.to_thread(pg.stop)
        info_path.unlink(missing_ok=True)


def replace_dir(options: SandboxOptions, directory: Path) -> SandboxOptions:
    """The options with `dir` made absolute."""
    return replace(options, dir=directory)


def _run(coro: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop where it is installed: a cheaper event loop leaves more CPU to scanjobs."""
    try:
        import uvloop  # lazy: a dependency only off Windows, tried only when a server starts
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def run_up(options: SandboxOptions) -> int:
    """Run the sandbox in the foreground until SIGINT/SIGTERM; return the exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await _serve(options, stop)

    try:
        return _run(main())
    except Exception as exc:  # startup failed: say why in one line, postgres already stopped
        print(f"sandbox failed: {exc}", file=sys.stderr, flush=True)
        log.debug("sandbox failure", exc_info=True)
        return 1

"""`sandbox up`: start PostgreSQL, seed both instances, serve their APIs until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import random
import shutil
import signal
import sys
import time
from collections.abc import Coroutine
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import psycopg
from aiohttp import web
from psycopg import sql

from scanjobs.fsutil import atomic_open
from scanjobs.sandbox import queries
from scanjobs.sandbox.access import grant_read_access
from scanjobs.sandbox.api import build_app
from scanjobs.sandbox.faults import RuntimeConfig, Stats
from scanjobs.sandbox.folder import SandboxError, SandboxFolder, choose_ports
from scanjobs.sandbox.instance import Instance, MemoryStorage, Pool
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


def _prepare_databases(
    pg: EmbeddedPostgres, options: SandboxOptions, folder: SandboxFolder, db_password: str
) -> tuple[SeedResult, bool]:
    """Both databases with the schema and the seed (the seed makes them repeatable); with
    `keep_data`, the databases of the last start instead. Returns (what they hold, kept)."""
    result, kept = _seed_databases(pg, options, folder, db_password)
    for name in INSTANCES:
        with psycopg.connect(pg.conninfo(name), autocommit=True) as conn:
            # Read-only, like the real platform's proxyuser: a stray write is a test failure.
            grant_read_access(conn, DB_USER, options.hidden(name))
    return result, kept


def _seed_databases(
    pg: EmbeddedPostgres, options: SandboxOptions, folder: SandboxFolder, db_password: str
) -> tuple[SeedResult, bool]:
    """Both databases seeded afresh, or kept (`keep_data`); the read-only user can connect."""
    with psycopg.connect(pg.conninfo("postgres"), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (DB_USER,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        admin.execute(
            sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(
                sql.SQL(verb), sql.Identifier(DB_USER), sql.Literal(db_password)
            )
        )
        if options.keep_data:
            kept = _kept_seed(admin, options, folder)
            if kept is not None:
                return kept, True
        folder.forget_seeded()  # until the new seed is complete
        for name in INSTANCES:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.execute(f"CREATE DATABASE {name}")
    storage = folder.storage
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
            cur.execute(f"GRANT CONNECT ON DATABASE {name} TO {DB_USER}")
    folder.remember_seeded(
        {"options": options.seeded_with(), "seeded_on": today.isoformat(), "result": result.as_record()}
    )
    return result, False


def _kept_seed(
    admin: psycopg.Connection[Any], options: SandboxOptions, folder: SandboxFolder
) -> SeedResult | None:
    """What the kept databases hold, or None when there are none to keep (a first start)."""
    record = folder.seeded()
    found = admin.execute(
        "SELECT count(*) FROM pg_database WHERE datname = ANY(%s)", (list(INSTANCES),)
    ).fetchone()
    if record is None or found is None or found[0] != len(INSTANCES):
        return None
    if record.get("options") != options.seeded_with():
        kept = ", ".join(f"{k}={v}" for k, v in dict(record.get("options") or {}).items())
        raise SandboxError(
            f"--keep-data: {folder.root} holds data seeded with {kept}; start with those options, "
            "or without --keep-data to seed afresh"
        )
    try:
        return SeedResult.from_record(record["result"])
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise SandboxError(
            f"{folder.seeded_file} is not what a sandbox writes ({exc}); start without --keep-data"
        ) from None


async def _serve(options: SandboxOptions, stop: asyncio.Event) -> int:
    folder = SandboxFolder(options.dir.resolve())
    with folder.lock():  # one sandbox per folder: a second would stop the first's PostgreSQL
        return await _serve_locked(replace_dir(options, folder.root), folder, stop)


async def _serve_locked(options: SandboxOptions, folder: SandboxFolder, stop: asyncio.Event) -> int:
    started = time.monotonic()
    folder.info_file.unlink(missing_ok=True)
    pg = EmbeddedPostgres(folder.pg_root, 0, durable=options.keep_data)
    # A killed sandbox's PostgreSQL still holds the port this start wants.
    await asyncio.to_thread(pg.stop_leftover)
    ports = choose_ports(folder, port_base=options.port_base, new_ports=options.new_ports)
    pg.port = ports.postgres
    credentials = folder.credentials()
    runners: list[web.AppRunner] = []
    instances: list[Instance] = []
    try:
        await asyncio.to_thread(pg.start)
        await asyncio.to_thread(pg.wait_ready)
        result, kept = await asyncio.to_thread(
            _prepare_databases, pg, options, folder, credentials.db_password
        )
        if stop.is_set():
            return 0
        config = RuntimeConfig(
            fault_rate=options.fault_rate,
            latency_ms=options.latency_ms,
            processing_delay=options.processing_delay,
            ma_accuracy=options.ma_accuracy,
            hang_seconds=options.hang_seconds,
            link_lifetime=options.link_lifetime,
            forget_uids_after=-1.0 if options.forget_uids_after is None else options.forget_uids_after,
        )
        info: dict[str, Any] = {"instances": {}}
        for n, name in enumerate(INSTANCES):
            pool = Pool(pg.conninfo(name))
            await pool.open()
            inst = Instance(
                name=name,
                pool=pool,
                storage=folder.storage / name,
                username=API_USER,
                password=credentials.api_password(name),
                user_id=7 + n,
                template_store_id=result.target_store_id if name == "target" else result.source_store_ids[0],
                seed=options.seed,
                config=config,
                stats=Stats(),
                truth=result.by_checksum,
                api_url=f"http://127.0.0.1:{ports.api(name)}",
                # Kept data outlives the process: uploads go to disk, not to memory.
                memory=MemoryStorage(budget=0) if options.keep_data else MemoryStorage(),
            )
            inst.process = process_scan
            instances.append(inst)
            runner = web.AppRunner(build_app(inst), access_log=None)
            await runner.setup()
            runners.append(runner)
            site = web.TCPSite(runner, "127.0.0.1", ports.api(name), shutdown_timeout=0.5)
            await site.start()
            info["instances"][name] = {
                "api_url": inst.api_url,
                "db": {
                    "host": "127.0.0.1",
                    "port": pg.port,
                    "dbname": name,
                    "user": DB_USER,
                    "password": credentials.db_password,
                },
                "username": inst.username,
                "password": inst.password,
            }
        lost_uploads = kept and folder.unsaved_marker.exists()
        if not options.keep_data:
            folder.unsaved_marker.touch()  # until the uploads held in memory are saved
        else:
            folder.unsaved_marker.unlink(missing_ok=True)
        for inst in instances:
            inst.peers = instances
            if kept:
                await _resume_processing(inst)
        folder.remember_ports(ports)
        info.update(
            source_scan_ids=result.source_scan_ids,
            source_store_ids=result.source_store_ids,
            target_store_id=result.target_store_id,
            empty_scan_ids=result.empty_scan_ids,
            shared_file_scan_ids=result.shared_file_scan_ids,
            pid=os.getpid(),
            seed=options.seed,
            data_kept=kept,
            options={k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
        )
        with atomic_open(folder.info_file, permissions=0o600) as fh:  # it holds the passwords
            json.dump(info, fh, indent=2)
        print(
            f"sandbox ready: source {instances[0].api_url}, target {instances[1].api_url},"
            f" PostgreSQL 127.0.0.1:{pg.port} ({folder.info_file}) in {time.monotonic() - started:.1f}s;"
            f" {'data kept from the last start' if kept else 'data seeded afresh'}",
            flush=True,
        )
        if lost_uploads:
            print(
                "sandbox: the last sandbox in this folder was killed before it saved the files"
                " uploaded to it: their rows are kept, their bytes are lost (404)",
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
        if instances:  # a later start with --keep-data finds every upload on disk
            for inst in instances:
                await asyncio.to_thread(inst.memory.save, inst.storage)
            folder.unsaved_marker.unlink(missing_ok=True)
        folder.info_file.unlink(missing_ok=True)


async def _resume_processing(inst: Instance) -> None:
    """Process the scans a stop interrupted, as if they had just been created."""
    assert inst.process is not None
    async with inst.pool.connection() as conn:
        pending = await queries.unfinished_scans(conn)
    for scan_id in pending:
        task = asyncio.create_task(inst.process(inst, scan_id))
        inst.tasks.add(task)
        task.add_done_callback(inst.tasks.discard)


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
    except SandboxError as exc:  # started as asked, it would break something: say what to do
        print(f"sandbox: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # startup failed: say why in one line, postgres already stopped
        print(f"sandbox failed: {exc}", file=sys.stderr, flush=True)
        log.debug("sandbox failure", exc_info=True)
        return 1

"""The state store beside each job (SQLite): items, their steps, the run lock, the fingerprint."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scanjobs import failpoints
from scanjobs.errors import LockedError, StateError

__all__ = ["FORMAT_VERSION", "ItemRecord", "StateStore", "RunLock", "state_files"]

FORMAT_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    kind TEXT NOT NULL,              -- scan | file | image
    key TEXT NOT NULL,               -- the source id (or scan:file for images)
    seq INTEGER NOT NULL,            -- order of selection
    step TEXT NOT NULL,              -- the last step reached
    status TEXT NOT NULL,            -- pending | running | done | failed
    source_id INTEGER,
    target_id INTEGER,
    request_uid TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    error_class TEXT,
    error_message TEXT,
    data TEXT,                       -- JSON, mode specific (paths, sizes, checksums)
    updated_at REAL NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS items_status ON items (kind, status);
CREATE INDEX IF NOT EXISTS items_seq ON items (kind, seq);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started_at REAL NOT NULL,
    finished_at REAL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    exit_code INTEGER,
    summary TEXT
);
"""

_FIELDS = ("source_id", "target_id", "request_uid", "error_class", "error_message")


def state_files(state_path: Path) -> list[Path]:
    """Every file that belongs to a job's state (and nothing else)."""
    return [
        state_path,
        state_path.with_name(state_path.name + "-wal"),
        state_path.with_name(state_path.name + "-shm"),
        state_path.with_name(state_path.name + "-journal"),
        state_path.with_suffix(".lock"),
    ]


@dataclass(frozen=True, slots=True)
class ItemRecord:
    kind: str
    key: str
    seq: int
    step: str
    status: str
    source_id: int | None
    target_id: int | None
    request_uid: str | None
    attempts: int
    error_class: str | None
    error_message: str | None
    data: dict[str, Any]
    updated_at: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ItemRecord:
        fields = dict(row)
        fields["data"] = json.loads(fields["data"]) if fields["data"] else {}
        return cls(**fields)


class RunLock:
    """An exclusive lock of one job: flock on `<state>.lock`, holding pid, host and start time.

    The kernel drops a flock when its process dies, so a lock left by a killed run is free to
    take; the file's content only serves the messages.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self.took_over: dict[str, Any] | None = None

    def holder(self) -> dict[str, Any] | None:
        try:
            info = json.loads(self.path.read_text() or "null")
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            info = self.holder() or {}
            raise LockedError(
                f"another run of this job is going: pid {info.get('pid', '?')} on "
                f"{info.get('host', '?')} since {info.get('started', '?')} (lock {self.path})",
                hint="wait for it to finish, or stop it; `scanjobs status JOB` shows its progress",
            ) from None
        previous = self.holder()
        if previous and previous.get("pid") != os.getpid():
            self.took_over = previous  # its holder is gone: the kernel released its flock
        os.ftruncate(fd, 0)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.write(fd, json.dumps(info).encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class StateStore:
    """One job's state: open with `StateStore.open(...)`; every transition is one transaction."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._lock = threading.RLock()  # one connection shared by worker threads

    # -- opening -------------------------------------------------------------------------
    @staticmethod
    def _check_existing(path: Path) -> None:
        """Refuse, without writing a byte, a state file we cannot fully trust."""
        remedy = (
            f"move it aside (or `scanjobs reset` the job) only if you are sure the work it "
            f"records can be redone: {path}"
        )
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open state file {path}: {exc}", hint=remedy) from None
        try:
            check = conn.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                raise StateError(f"state file is damaged ({check[0] if check else '?'}): {path}", hint=remedy)
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "meta" not in tables:
                raise StateError(f"not a scanjobs state file: {path}", hint=remedy)
            row = conn.execute("SELECT value FROM meta WHERE key='format_version'").fetchone()
            version = int(row[0]) if row else 0
        except sqlite3.DatabaseError as exc:
            raise StateError(f"state file is unreadable ({exc}): {path}", hint=remedy) from None
        finally:
            conn.close()
        if version > FORMAT_VERSION:
            raise StateError(
                f"state file {path} was written by a newer scanjobs (format {version}, this one "
                f"reads {FORMAT_VERSION})",
                hint="upgrade scanjobs; do not delete the file, it records work already done",
            )
        if version < 1:
            raise StateError(f"state file {path} has no format version", hint=remedy)

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        fingerprint: str | None = None,
        fingerprint_fields: Mapping[str, Any] | None = None,
        create: bool = True,
    ) -> StateStore:
        """Open (creating if allowed) and check format and fingerprint.

        `fingerprint_fields` (what the fingerprint hashes) are kept too, so that a refusal can
        say what changed (source, target, strategy...).
        """
        exists = path.exists() and path.stat().st_size > 0
        if exists:
            cls._check_existing(path)
        elif path.exists() or not create:
            if not create:
                raise StateError(
                    f"no state yet for this job ({path} does not exist)", hint="run the job first"
                )
            # an empty file: something created it and wrote nothing; refuse to guess
            raise StateError(
                f"state file is empty: {path}", hint="move it aside if no run of this job ever completed work"
            )
        conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process (what resume must survive); after a power
        # loss the last transitions may be lost, which the deterministic request uid still covers.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        store = cls(path, conn)
        if not exists:
            conn.executescript(_SCHEMA)
            with store.transaction() as c:
                c.execute("INSERT OR REPLACE INTO meta VALUES ('format_version', ?)", (str(FORMAT_VERSION),))
                c.execute("INSERT OR REPLACE INTO meta VALUES ('created_at', ?)", (str(time.time()),))
        elif create:
            # Files from before this index: `update(ensure=...)` numbers a new item by MAX(seq),
            # which without it reads every item of the kind.
            conn.execute("CREATE INDEX IF NOT EXISTS items_seq ON items (kind, seq)")
        if fingerprint is not None:
            recorded = store.meta("fingerprint")
            if recorded is not None and recorded != fingerprint:
                changed = store._changed_fields(fingerprint_fields)
                store.close()
                raise StateError(
                    f"the job changed since its state was recorded{changed}: the work "
                    f"already done was done for the old settings ({path})",
                    hint="change it back, or run with --restart to start over (the old state is "
                    "kept aside as a backup)",
                )
            with store.transaction() as c:
                c.execute("INSERT OR REPLACE INTO meta VALUES ('fingerprint', ?)", (fingerprint,))
                if fingerprint_fields is not None:
                    c.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('fingerprint_fields', ?)",
                        (json.dumps(fingerprint_fields, sort_keys=True, default=str),),
                    )
        return store

    def _changed_fields(self, fields: Mapping[str, Any] | None) -> str:
        """' (target, strategy changed)' from the recorded fields, or '' when unknown."""
        old = json.loads(self.meta("fingerprint_fields") or "{}")
        if not old or fields is None:
            return ""
        new = json.loads(json.dumps(fields, sort_keys=True, default=str))
        changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        return f" ({', '.join(changed)} changed)" if changed else ""

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- transactions and meta -----------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- items ---------------------------------------------------------------------------
    def add_items(self, kind: str, keys: Sequence[tuple[str, int | None]], *, step: str = "new") -> int:
        """Add (key, source_id) items not yet known, in order; return how many were new."""
        now = time.time()
        with self.transaction() as c:
            start = c.execute("SELECT COALESCE(MAX(seq), 0) FROM items WHERE kind=?", (kind,)).fetchone()[0]
            before = c.total_changes
            c.executemany(
                "INSERT OR IGNORE INTO items (kind, key, seq, step, status, source_id, updated_at) "
                "VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                [(kind, key, start + i + 1, step, source_id, now) for i, (key, source_id) in enumerate(keys)],
            )
            return c.total_changes - before

    def get(self, kind: str, key: str) -> ItemRecord | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM items WHERE kind=? AND key=?", (kind, key)).fetchone()
        return None if row is None else ItemRecord.from_row(row)

    def items(
        self, kind: str, *, status: str | Iterable[str] | None = None, keys: Iterable[str] | None = None
    ) -> list[ItemRecord]:
        sql = "SELECT * FROM items WHERE kind=?"
        args: list[Any] = [kind]
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            args += statuses
        sql += " ORDER BY seq"
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        records = [ItemRecord.from_row(r) for r in rows]
        if keys is not None:
            wanted = set(keys)
            records = [r for r in records if r.key in wanted]
        return records

    def update(
        self,
        kind: str,
        key: str,
        *,
        step: str | None = None,
        status: str | None = None,
        data: dict[str, Any] | None = None,
        attempt: bool = False,
        clear_error: bool = False,
        ensure: int | None = None,
        **fields: Any,
    ) -> None:
        """One transition of one item, in one transaction. `data` is merged into the JSON;
        with `ensure` (its source id), an item not yet known is created first, in the same
        transaction."""
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise ValueError(f"unknown item fields: {unknown}")
        now = time.time()
        sets: list[str] = ["updated_at=?"]
        args: list[Any] = [now]
        for name, value in (("step", step), ("status", status)):
            if value is not None:
                sets.append(f"{name}=?")
                args.append(value)
        for name, value in fields.items():
            sets.append(f"{name}=?")
            args.append(value)
        if clear_error:
            sets += ["error_class=NULL", "error_message=NULL"]
        if attempt:
            sets.append("attempts=attempts+1")
        if data:
            sets.append("data=json_patch(COALESCE(data, '{}'), ?)")
            args.append(json.dumps(data, sort_keys=True, default=str))
        with self.transaction() as c:
            if ensure is not None:
                c.execute(
                    "INSERT OR IGNORE INTO items (kind, key, seq, step, status, source_id, updated_at) "
                    "VALUES (?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM items WHERE kind=?), 'new', "
                    "'pending', ?, ?)",
                    (kind, key, kind, ensure, now),
                )
            cur = c.execute(f"UPDATE items SET {', '.join(sets)} WHERE kind=? AND key=?", [*args, kind, key])
            if cur.rowcount != 1:
                raise KeyError(f"no {kind} item {key!r} in the state")
            failpoints.hit("mid_state_write")

    def fail(
        self,
        kind: str,
        key: str,
        step: str,
        error: BaseException,
        *,
        attempt: bool = False,
        ensure: int | None = None,
    ) -> None:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        self.update(
            kind,
            key,
            step=step,
            status="failed",
            error_class=type(error).__name__,
            error_message=message[:2000],
            attempt=attempt,
            ensure=ensure,
        )

    def counts(self) -> dict[str, dict[str, int]]:
        """{kind: {status: n}} plus {kind+':steps': {step/status: n}}."""
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            rows = self._conn.execute(
                "SELECT kind, step, status, COUNT(*) FROM items GROUP BY kind, step, status"
            ).fetchall()
        for kind, step, status, n in rows:
            out.setdefault(kind, {}).setdefault(status, 0)
            out[kind][status] += n
            out.setdefault(f"{kind}:steps", {})[f"{step}/{status}"] = n
        return out

    # -- runs ----------------------------------------------------------------------------
    def start_run(self) -> int:
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO runs (started_at, pid, host) VALUES (?, ?, ?)",
                (time.time(), os.getpid(), socket.gethostname()),
            )
            return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, exit_code: int, summary: dict[str, Any]) -> None:
        with self.transaction() as c:
            c.execute(
                "UPDATE runs SET finished_at=?, exit_code=?, summary=? WHERE id=?",
                (time.time(), exit_code, json.dumps(summary, default=str), run_id),
            )

    def runs(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._conn.execute("SELECT * FROM runs ORDER BY id").fetchall()]

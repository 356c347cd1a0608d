"""The state store beside each job (SQLite): items, their transitions, runs, the fingerprint."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from scanjobs import failpoints
from scanjobs.errors import StateError
from scanjobs.state import migrations, verified
from scanjobs.state.paths import StatePaths
from scanjobs.state.records import ItemKind, ItemRecord, RunRecord, StateCounts, Status

__all__ = ["COUNTS_SQL", "SELECTION_DAY", "StateStore"]


# SQLite's primary result codes for a file or disk that fails, as opposed to a statement of ours
# that is wrong (a syntax or constraint error is a bug and stays one).
_STORAGE_FAILURES = frozenset(
    {
        "SQLITE_FULL",
        "SQLITE_IOERR",
        "SQLITE_READONLY",
        "SQLITE_CANTOPEN",
        "SQLITE_CORRUPT",
        "SQLITE_NOTADB",
        "SQLITE_BUSY",
        "SQLITE_LOCKED",
        "SQLITE_PROTOCOL",
        "SQLITE_NOLFS",
        "SQLITE_PERM",
    }
)


# meta: the day a job's relative query dates count from, kept by its first run that needed it
# (`modes/resources.selection_day`), shown by `status`
SELECTION_DAY = "selection_day"

# The counts of `status`, read from the index items_counts alone (format 4): 0.04 s for a job of
# 100k scans, where reading every item took 0.25 s.
COUNTS_SQL = (
    "SELECT selected, kind, step, status, COUNT(*) FROM items GROUP BY kind, selected, step, status "
    "ORDER BY kind, step, status"
)


def _is_storage_failure(exc: sqlite3.Error) -> bool:
    """The state's file or disk failed (full, I/O error, read-only, locked too long)."""
    name = getattr(exc, "sqlite_errorname", None)  # Python 3.11+: e.g. SQLITE_IOERR_WRITE
    if name is None:
        return type(exc) in (sqlite3.OperationalError, sqlite3.DatabaseError)
    return any(name == code or name.startswith(code + "_") for code in _STORAGE_FAILURES)


class StateStore:
    """One job's state: open with `StateStore.open(...)`; every transition is one transaction.

    Transitions: `record_intent` (RUNNING: about to act), `mark_done`, `mark_failed`.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, *, writer: bool = False) -> None:
        self.path = path
        self._conn = conn
        self._lock = threading.RLock()  # one connection shared by worker threads
        self._broken: str | None = None  # why writes fail, once one has failed
        self._writer = writer  # opened to write, its file checked: a clean close records so

    @property
    def paths(self) -> StatePaths:
        return StatePaths(self.path)

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: Path,
        *,
        fingerprint: str | None = None,
        fingerprint_fields: Mapping[str, Any] | None = None,
        create: bool = True,
        verify: bool = True,
    ) -> StateStore:
        """Open (creating if allowed) and check format and fingerprint.

        With `create` (opening to write) a file of an older format is migrated to FORMAT_VERSION;
        without it, it is read as it is. `fingerprint_fields` (what the fingerprint hashes) are
        kept too, so that a refusal can say what changed (source, target, strategy...).
        `verify=False` (a reader only) skips the check of every page: see `check_existing`.
        """
        exists = path.exists() and path.stat().st_size > 0
        if exists:
            migrations.check_existing(path, verify=verify or create)
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
        store = cls(path, conn, writer=create)
        if fingerprint is not None and exists:
            store._refuse_changed(fingerprint, fingerprint_fields)  # before any write to the file
        if not exists:
            with store.transaction() as c:
                migrations.create(c)
                migrations.upgrade(c)
        elif create:
            with store.transaction() as c:
                migrations.upgrade(c)
        if fingerprint is not None:
            with store.transaction() as c:
                c.execute("INSERT OR REPLACE INTO meta VALUES ('fingerprint', ?)", (fingerprint,))
                if fingerprint_fields is not None:
                    c.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('fingerprint_fields', ?)",
                        (json.dumps(fingerprint_fields, sort_keys=True, default=str),),
                    )
        return store

    def _refuse_changed(self, fingerprint: str, fields: Mapping[str, Any] | None) -> None:
        refusal = self.refusal_of(fingerprint, fields)
        if refusal is not None:
            self.close()
            raise refusal

    def refusal_of(self, fingerprint: str, fields: Mapping[str, Any] | None = None) -> StateError | None:
        """The refusal a run of a job with this fingerprint meets here (the job changed since
        its work was recorded), or None: what `plan` says without writing."""
        recorded = self.meta("fingerprint")
        if recorded is None or recorded == fingerprint:
            return None
        return StateError(
            f"the job changed since its state was recorded{self._changed_fields(fields)}: the work "
            f"already done was done for the old settings ({self.path})",
            hint="change it back, or run with --restart to start over (the old state is "
            "kept aside as a backup)",
        )

    def _changed_fields(self, fields: Mapping[str, Any] | None) -> str:
        """' (target, strategy changed)' from the recorded fields, or '' when unknown."""
        old = json.loads(self.meta("fingerprint_fields") or "{}")
        if not old or fields is None:
            return ""
        new = json.loads(json.dumps(fields, sort_keys=True, default=str))
        changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        return f" ({', '.join(changed)} changed)" if changed else ""

    def close(self) -> None:
        """Close the connection. A writer that closes cleanly (every write recorded, the WAL
        folded into the file) records the file as verified: the next run need not check every
        page again (`verified.py`)."""
        with self._lock:
            self._conn.close()
            if self._writer and self._broken is None:
                verified.record(self.paths)
            self._writer = False

    # -- transactions and meta -----------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. A write the file refuses (disk full, I/O error) raises
        StateError, and so does every later one: a run must stop rather than act on work it
        cannot record."""
        with self._lock:
            if self._broken is not None:
                raise self._write_failed(self._broken)
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if not _is_storage_failure(exc):
                    raise  # a bug in our SQL, not the file's condition
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                self._broken = str(exc)
                raise self._write_failed(self._broken) from exc

    def _write_failed(self, reason: str) -> StateError:
        return StateError(
            f"cannot write the state file {self.path}: {reason}",
            hint="free some disk space (or mend the disk) and rerun: the run goes on from what the "
            "state last recorded, and nothing it did since is done twice",
        )

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- items ---------------------------------------------------------------------------
    def add_items(
        self,
        kind: ItemKind | str,
        keys: Sequence[tuple[str, int | None]],
        *,
        step: str = "new",
        status: Status = Status.PENDING,
    ) -> int:
        """Add (key, source_id) items not yet known, in order (PENDING unless `status` says
        otherwise); return how many were new."""
        kind_ = ItemKind(kind).value
        now = time.time()
        with self.transaction() as c:
            start = c.execute("SELECT COALESCE(MAX(seq), 0) FROM items WHERE kind=?", (kind_,)).fetchone()[0]
            before = c.total_changes
            c.executemany(
                "INSERT OR IGNORE INTO items (kind, key, seq, step, status, source_id, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (kind_, key, start + i + 1, step, status.value, source_id, now)
                    for i, (key, source_id) in enumerate(keys)
                ],
            )
            return c.total_changes - before

    def get(self, kind: ItemKind | str, key: str) -> ItemRecord | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM items WHERE kind=? AND key=?", (ItemKind(kind).value, key)
            ).fetchone()
        return None if row is None else ItemRecord.from_row(row)

    def select_only(self, kinds: Iterable[ItemKind], source_ids: Iterable[int]) -> None:
        """Mark the items of `kinds` whose source id is among `source_ids` selected, the others
        not: the job's current selection. Records are kept either way."""
        with self.transaction() as c:
            c.execute("CREATE TEMP TABLE IF NOT EXISTS selection (source_id INTEGER PRIMARY KEY)")
            c.execute("DELETE FROM selection")
            c.executemany("INSERT OR IGNORE INTO selection VALUES (?)", [(int(i),) for i in source_ids])
            for kind in kinds:
                c.execute(
                    "UPDATE items SET selected = (source_id IN (SELECT source_id FROM selection)) "
                    "WHERE kind=? AND selected != (source_id IN (SELECT source_id FROM selection))",
                    (ItemKind(kind).value,),
                )
            c.execute("DELETE FROM selection")

    def items(
        self,
        kind: ItemKind | str,
        *,
        status: Status | str | Iterable[Status | str] | None = None,
        keys: Iterable[str] | None = None,
        selected_only: bool = False,
    ) -> list[ItemRecord]:
        """The items of a kind in the order they were selected, optionally of some statuses/keys,
        or only those the job still selects."""
        sql = "SELECT * FROM items WHERE kind=?"
        args: list[Any] = [ItemKind(kind).value]
        if selected_only:
            sql += " AND selected=1"
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            args += [Status(s).value for s in statuses]
        sql += " ORDER BY seq"
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        records = [ItemRecord.from_row(r) for r in rows]
        if keys is not None:
            wanted = set(keys)
            records = [r for r in records if r.key in wanted]
        return records

    def record_selection(self, kind: ItemKind, source_ids: Sequence[int]) -> None:
        """The job's selection of `kind`, in order: ids not known yet are added (pending), and
        only these are selected (`select_only`). A selection the same as the one recorded last
        writes nothing (a rerun of a 100k-scan job would rewrite 100k rows for nothing)."""
        digest = hashlib.sha256(",".join(map(str, source_ids)).encode()).hexdigest()
        key = f"selection_{ItemKind(kind).value}"
        if self.meta(key) == digest:
            return
        self.add_items(kind, [(str(i), i) for i in source_ids])
        self.select_only([kind], source_ids)
        self.set_meta(key, digest)

    def _tuples(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows of a query as plain tuples: for 100k rows, a third faster than sqlite3.Row."""
        with self._lock:
            cursor = self._conn.cursor()
            cursor.row_factory = None
            return cursor.execute(sql, args).fetchall()

    def source_ids(self, kind: ItemKind | str, status: Status) -> set[int]:
        """The source ids of the items of a kind in `status`, selected or not (no records built)."""
        rows = self._tuples(
            "SELECT source_id FROM items WHERE kind=? AND status=? AND source_id IS NOT NULL",
            (ItemKind(kind).value, Status(status).value),
        )
        return {source_id for (source_id,) in rows}

    def outcomes(self, kind: ItemKind | str) -> list[tuple[int, int | None, Status]]:
        """(source id, target id, status) of each item of a kind the job selects, in the order
        they were selected: what the reports need, without reading whole records (a 100k-scan
        state's records take seconds to build) or keys (their texts take half the time). For
        the kinds whose key is the source id (scans, files), as an item without one says."""
        rows = self._tuples(
            "SELECT COALESCE(source_id, CAST(key AS INTEGER)), target_id, status FROM items "
            "WHERE kind=? AND selected=1 ORDER BY seq",
            (ItemKind(kind).value,),
        )
        statuses = {s.value: s for s in Status}
        return [(source_id, target_id, statuses[status]) for source_id, target_id, status in rows]

    def record_intent(
        self,
        kind: ItemKind,
        key: str,
        step: str,
        *,
        data: dict[str, Any] | None = None,
        request_uid: str | None = None,
        attempt: bool = False,
        ensure: int | None = None,
    ) -> None:
        """The item is about to act at `step` (RUNNING): recorded before the action, so that a
        killed run's successor knows it may have happened (and by which request uid)."""
        self._transition(
            kind,
            key,
            step=step,
            status=Status.RUNNING,
            fields={} if request_uid is None else {"request_uid": request_uid},
            data=data,
            attempt=attempt,
            ensure=ensure,
        )

    def mark_done(
        self,
        kind: ItemKind,
        key: str,
        step: str,
        *,
        target_id: int | None = None,
        data: dict[str, Any] | None = None,
        attempt: bool = False,
        ensure: int | None = None,
    ) -> None:
        """The item reached `step` (DONE), with what it made; an earlier error is cleared."""
        self._transition(
            kind,
            key,
            step=step,
            status=Status.DONE,
            fields={} if target_id is None else {"target_id": target_id},
            data=data,
            attempt=attempt,
            clear_error=True,
            ensure=ensure,
        )

    def mark_failed(
        self,
        kind: ItemKind,
        key: str,
        step: str,
        error: BaseException,
        *,
        attempt: bool = False,
        ensure: int | None = None,
    ) -> None:
        """The item failed at `step` (FAILED), with the error's class and first line."""
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        self._transition(
            kind,
            key,
            step=step,
            status=Status.FAILED,
            fields={"error_class": type(error).__name__, "error_message": message[:2000]},
            attempt=attempt,
            ensure=ensure,
        )

    def _transition(
        self,
        kind: ItemKind | str,
        key: str,
        *,
        step: str | None,
        status: Status | None,
        fields: Mapping[str, Any],
        data: dict[str, Any] | None = None,
        attempt: bool = False,
        clear_error: bool = False,
        ensure: int | None = None,
    ) -> None:
        """One transition of one item, in one transaction.

        `fields`: the columns target_id, request_uid, error_class or error_message.
        """
        kind_ = ItemKind(kind).value
        now = time.time()
        sets: list[str] = ["updated_at=?"]
        args: list[Any] = [now]
        for name, value in (("step", step), ("status", None if status is None else status.value)):
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
                    "?, ?, ?)",
                    (kind_, key, kind_, Status.PENDING.value, ensure, now),
                )
            cur = c.execute(f"UPDATE items SET {', '.join(sets)} WHERE kind=? AND key=?", [*args, kind_, key])
            if cur.rowcount != 1:
                raise KeyError(f"no {kind_} item {key!r} in the state")
            failpoints.hit("mid_state_write")

    def counts(self, *, selected: bool = True) -> StateCounts:
        """The items the job selects (or, with `selected=False`, those it no longer selects)
        counted by kind, step and status."""
        return self.counts_by_selection()[0 if selected else 1]

    def counts_by_selection(self) -> tuple[StateCounts, StateCounts]:
        """`counts()` and `counts(selected=False)` in one pass over an index (`COUNTS_SQL`)."""
        rows = self._tuples(COUNTS_SQL, ())
        return (
            StateCounts.from_rows(row[1:] for row in rows if row[0]),
            StateCounts.from_rows(row[1:] for row in rows if not row[0]),
        )

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
        """Every run recorded, oldest first; `summary` as the object finish_run was given."""
        with self._lock:
            rows = [dict(r) for r in self._conn.execute("SELECT * FROM runs ORDER BY id").fetchall()]
        for row in rows:
            row["summary"] = json.loads(row["summary"]) if row.get("summary") else None
        return rows

    def run_records(self) -> list[RunRecord]:
        """Every run, oldest first, its summary parsed (`scanjobs status --runs`)."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM runs ORDER BY id").fetchall()
        return [RunRecord.from_row(r) for r in rows]

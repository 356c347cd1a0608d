"""Read-only access to one platform instance's PostgreSQL: named .sql queries, ids as parameters."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from functools import cache
from importlib import resources
from types import TracebackType
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row, tuple_row

from scanjobs.errors import AuthError, PlatformError, UnreachableError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "PlatformDB",
    "ScanFileRef",
    "SourceScan",
    "StoreScanDates",
    "MappingNames",
    "ResolvedIds",
    "ScanProcessing",
    "ScanStatus",
    "DownloadInfo",
    "FoundUpload",
    "FoundScan",
    "SCAN_DETAIL_COLUMNS",
]

BATCH_IDS = 20_000  # ids a query of many scans is sent at a time
BATCH_ROWS = 2_000  # rows of a large result made Python objects at a time (10k took 10 MB more)

SCAN_DETAIL_COLUMNS = (
    "scan_id", "scan_status", "report_id", "realogram_id", "bays", "store_planogram_id",
    "planogram_id", "planogram_name", "section_id", "section_name", "is_additional_section",
    "pre_pog_pct", "post_pog_pct", "pre_osa_pct", "post_osa_pct", "ok", "wandering", "oos",
    "hole", "map_by",
)  # fmt: skip
_INT_COLUMNS = ("scan_id", "report_id", "realogram_id", "bays", "store_planogram_id",
                "planogram_id", "section_id")  # fmt: skip
_FLOAT_COLUMNS = ("pre_pog_pct", "post_pog_pct", "pre_osa_pct", "post_osa_pct")
_COUNT_COLUMNS = ("ok", "wandering", "oos", "hole")
_TEXT_COLUMNS = ("scan_status", "planogram_name", "section_name", "map_by")


@dataclass(frozen=True, slots=True)
class ScanFileRef:
    """One file of a scan: the platform file id and its type (image/video/keyframe)."""

    file_id: int
    file_type: str | None


@dataclass(frozen=True, slots=True)
class SourceScan:
    """A scan as the copy mode needs it; `files` in source order (scanfile row id)."""

    id: int
    store_id: int
    created_at: datetime
    status: str
    provided_values: dict[str, Any]
    files: tuple[ScanFileRef, ...]


@dataclass(frozen=True, slots=True)
class StoreScanDates:
    """A store's scans: how many, how many with the status asked for, and the creation dates of
    the first and last of those (of all its scans when none has that status)."""

    store_id: int
    scans: int
    with_status: int
    first_created: date
    last_created: date


@dataclass(frozen=True, slots=True)
class MappingNames:
    """Source ids -> names: store POG id -> POG name; section id -> (POG, section); category."""

    store_planograms: dict[int, str]
    sections: dict[int, tuple[str, str]]
    categories: dict[int, str]


@dataclass(frozen=True, slots=True)
class ResolvedIds:
    """Target names -> ids in one store; a name without a match is simply absent."""

    store_planograms: dict[str, int]
    sections: dict[tuple[str, str], int]
    categories: dict[str, int]


class ScanStatus(str, Enum):
    """A scan's processing status, in the platform's words (its client's list)."""

    CREATED = "action created"
    IN_PROGRESS = "in progress"
    DONE = "done"
    ERROR = "error"
    INTERRUPTED = "interrupted"


_FAILED = frozenset({ScanStatus.ERROR.value, ScanStatus.INTERRUPTED.value})


@dataclass(frozen=True, slots=True)
class ScanProcessing:
    """Where a scan is in processing: its status as the platform wrote it (any text: a word
    this list lacks is not finished) and its active realogram's active report count."""

    status: str
    report_count: int

    @property
    def processed(self) -> bool:
        """Done: its reports are final, and it may have none (the platform's has_report false)."""
        return self.status == ScanStatus.DONE.value

    @property
    def failed(self) -> bool:
        """Ended in error or interrupted: it will have no reports."""
        return self.status in _FAILED

    @property
    def finished(self) -> bool:
        """Done, error or interrupted (the platform client's own test): nothing more will come."""
        return self.processed or self.failed


@dataclass(frozen=True, slots=True)
class DownloadInfo:
    """What names a downloaded file: first report's section, store POG id, files in order."""

    section_name: str | None
    store_pog_id: str | None
    files: tuple[ScanFileRef, ...]


@dataclass(frozen=True, slots=True)
class FoundUpload:
    """A file on the target that no scan uses: a candidate for upload adoption."""

    id: int
    checksum: str
    name: str
    created: float  # epoch seconds, by the platform's clock


@dataclass(frozen=True, slots=True)
class FoundScan:
    """A scan on the target that uses some given files: a candidate for create adoption."""

    id: int
    files: tuple[int, ...]  # all its files, in order


@cache
def _sql(name: str) -> str:
    return (resources.files("scanjobs.platform") / "sql" / f"{name}.sql").read_text("utf-8")


def _unique(ids: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(int(i) for i in ids))


def _files(raw: Any) -> tuple[ScanFileRef, ...]:
    return tuple(ScanFileRef(int(fid), None if ftype is None else str(ftype)) for fid, ftype in raw or ())


def _short(exc: BaseException) -> str:
    # libpq messages span lines ("connection to server ... failed: FATAL:  ..."): keep one line.
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines) if lines else type(exc).__name__


class PlatformDB:
    """One instance's database, read-only. One connection behind a lock: safe across threads."""

    def __init__(
        self,
        host: str,
        port: int,
        dbname: str,
        user: str,
        password: str,
        *,
        connect_timeout: float = 10,
        statement_timeout_ms: int = 120_000,
    ) -> None:
        self.host = host
        self.port = int(port)
        self.dbname = dbname
        self.user = user
        self._password = password
        self._connect_timeout = connect_timeout
        self._statement_timeout_ms = int(statement_timeout_ms)
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[dict[str, Any]] | None = None

    def __repr__(self) -> str:
        return f"PlatformDB({self.user}@{self.host}:{self.port}/{self.dbname})"

    def __enter__(self) -> PlatformDB:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def connect(self) -> None:
        """Open the connection now (else the first query does): AuthError / UnreachableError."""
        with self._lock:
            self._connection()

    def _redact(self, text: str) -> str:
        return text.replace(self._password, "***") if self._password else text

    def _connection(self) -> psycopg.Connection[dict[str, Any]]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        try:
            # Keyword arguments, not a DSN string: the password never sits in a printable text.
            conn = psycopg.connect(
                host=self.host,
                port=self.port,
                dbname=self.dbname,
                user=self.user,
                password=self._password,
                connect_timeout=max(1, round(self._connect_timeout)),
                application_name="scanjobs",
                row_factory=dict_row,
                # psycopg prepares a query on the server after its 5th run. The -maint hosts and
                # proxyuser suggest a transaction pooler (PgBouncer and the like) in front of the
                # database: the next transaction may reach another server connection, where that
                # statement does not exist. Never prepare: every query is sent whole each time.
                prepare_threshold=None,
            )
        except psycopg.OperationalError as exc:
            reason = self._redact(_short(exc))
            where = f"database {self.dbname} at {self.host}:{self.port}"
            if "password authentication failed" in reason or "authentication failed" in reason:
                raise AuthError(
                    f"{where} refused user {self.user!r}: password authentication failed",
                    hint="check the db password of this instance",
                ) from None
            raise UnreachableError(f"cannot connect to {where}: {reason}") from None
        # Read-only at the session level: any write by mistake fails instead of touching
        # production. Set per transaction (BEGIN READ ONLY), which also works behind poolers.
        conn.read_only = True
        self._conn = conn
        return conn

    def _query(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Run sql/<name>.sql in a read-only transaction; reconnect once if the link broke."""
        return self._run(name, params, tuples=False)[1]  # type: ignore[return-value]

    def _query_batches(
        self, name: str, params: dict[str, Any], take: Callable[[list[str], list[tuple[Any, ...]]], None]
    ) -> None:
        """`_query`, its rows handed to `take` as tuples, BATCH_ROWS at a time, with the column
        names: a large result (the details of 100k scans) is never all Python objects at once."""
        self._run(name, params, tuples=True, take=take)

    def _run(
        self,
        name: str,
        params: dict[str, Any],
        *,
        tuples: bool,
        take: Callable[[list[str], list[tuple[Any, ...]]], None] | None = None,
    ) -> tuple[list[str], list[dict[str, Any]] | list[tuple[Any, ...]]]:
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection()
                try:
                    factory: Any = tuple_row if tuples else dict_row
                    with conn.transaction(), conn.cursor(row_factory=factory) as cur:
                        # transaction-local, so a pooler reusing the server connection keeps
                        # no trace of it
                        cur.execute(
                            "SELECT set_config('statement_timeout', %s, true)",
                            (str(self._statement_timeout_ms),),
                        )
                        cur.execute(_sql(name), params)
                        names = [column.name for column in cur.description or ()]
                        if take is None:
                            return names, cur.fetchall()
                        while batch := cur.fetchmany(BATCH_ROWS):
                            take(names, batch)
                        return names, []
                except psycopg.errors.QueryCanceled:
                    raise PlatformError(
                        f"database {self.dbname} at {self.host}:{self.port}: query {name} "
                        f"exceeded the statement timeout of {self._statement_timeout_ms} ms"
                    ) from None
                except psycopg.OperationalError as exc:
                    if conn.broken and attempt == 1:
                        self._conn = None  # read-only queries are safe to run again
                        continue
                    raise UnreachableError(
                        f"database {self.dbname} at {self.host}:{self.port} failed during "
                        f"query {name}: {self._redact(_short(exc))}"
                    ) from None
                except psycopg.Error as exc:
                    raise PlatformError(
                        f"database {self.dbname} at {self.host}:{self.port}: query {name} "
                        f"failed: {self._redact(_short(exc))}"
                    ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    # -- scans -----------------------------------------------------------------------------------

    def select_scan_ids(
        self,
        *,
        ids: Sequence[int] | None = None,
        stores: Sequence[int] | None = None,
        date_from: date | None = None,
        date_to: date | None = None,
        status: str | None = "done",
    ) -> list[int]:
        """With `ids`: those that exist, in the given order (status and dates not applied).

        Otherwise the scans of `stores` (None = any store) created in [date_from, date_to]
        (inclusive, each optional) with `status` (None = any), ordered by id.
        """
        if ids is not None:
            wanted = _unique(ids)
            if not wanted:
                return []
            found = self._existing(wanted)
            return [i for i in wanted if i in found]
        params = {
            "stores": None if stores is None else [int(s) for s in stores],
            "date_from": date_from,
            "date_to": date_to,
            "status": status,
        }
        return [row["id"] for row in self._query("scan_ids_query", params)]

    def store_scan_dates(self, stores: Sequence[int], status: str | None = "done") -> list[StoreScanDates]:
        """What each of `stores` holds: its scans, those with `status`, and the dates they were
        created (stores without scans are left out)."""
        params = {"stores": [int(s) for s in stores], "status": status}
        return [StoreScanDates(**row) for row in self._query("store_scan_dates", params)]

    def missing_scan_ids(self, ids: Sequence[int]) -> list[int]:
        """The ids (in the given order) that are not scans of this instance."""
        wanted = _unique(ids)
        missing: list[int] = []
        for start in range(0, len(wanted), BATCH_IDS):
            some = wanted[start : start + BATCH_IDS]
            found = self._existing(some)
            missing.extend(i for i in some if i not in found)
        return missing

    def _existing(self, wanted: list[int]) -> set[int]:
        """The scans among `wanted` that exist (read as tuples, a batch at a time: the ids of
        100k pairs as rows of dicts took 20 MB)."""
        found: set[int] = set()
        self._query_batches(
            "scan_ids_existing", {"ids": wanted}, lambda _, rows: found.update(r[0] for r in rows)
        )
        return found

    def scans_with_files(self, ids: Sequence[int]) -> list[SourceScan]:
        """The existing scans among `ids`, in the given order, each with its files."""
        wanted = _unique(ids)
        if not wanted:
            return []
        rows = {row["id"]: row for row in self._query("scans_with_files", {"ids": wanted})}
        return [
            SourceScan(
                id=row["id"],
                store_id=row["store_id"],
                created_at=row["created_at"],
                status=row["status"],
                provided_values=dict(row["provided_values"] or {}),
                files=_files(row["files"]),
            )
            for row in (rows[i] for i in wanted if i in rows)
        ]

    def store_exists(self, store_id: int) -> bool:
        return bool(self._query("store_exists", {"store_id": int(store_id)})[0]["exists"])

    def unclaimed_uploads(
        self, store_id: int, checksums: Sequence[str], since: datetime
    ) -> list[FoundUpload]:
        """Files in `store_id` with one of `checksums`, created since `since`, that no scan uses,
        by id. PlatformError where the platform's file table lacks these columns."""
        if not checksums:
            return []
        rows = self._query(
            "unclaimed_uploads",
            {"store_id": int(store_id), "checksums": list(dict.fromkeys(checksums)), "since": since},
        )
        return [
            FoundUpload(int(r["id"]), str(r["checksum"]), str(r["original_filename"]), float(r["created"]))
            for r in rows
        ]

    def scans_using_files(self, store_id: int, file_ids: Sequence[int]) -> list[FoundScan]:
        """The scans of `store_id` that use any of `file_ids`, by id, each with all its files."""
        wanted = _unique(file_ids)
        if not wanted:
            return []
        rows = self._query("scans_using_files", {"store_id": int(store_id), "file_ids": wanted})
        return [FoundScan(int(r["id"]), tuple(int(f) for f in r["files"])) for r in rows]

    def clock_offset(self) -> tuple[float, float]:
        """How far the database's clock is ahead of ours (seconds), and the uncertainty of that
        figure (half the round trip that measured it)."""
        before = time.time()
        now = float(self._query("clock", {})[0]["now"])
        after = time.time()
        return now - (before + after) / 2, (after - before) / 2

    # -- id translation for the "mapped" strategy ----------------------------------------------

    def mapping_names(
        self,
        *,
        store_planogram_ids: Iterable[int] = (),
        section_ids: Iterable[int] = (),
        category_ids: Iterable[int] = (),
    ) -> MappingNames:
        """Source side: the names behind ids; ids that don't exist are absent from the dicts."""
        pogs, sections, categories = (
            _unique(store_planogram_ids), _unique(section_ids), _unique(category_ids)
        )  # fmt: skip
        return MappingNames(
            store_planograms={
                r["id"]: r["name"]
                for r in (self._query("store_planogram_names", {"ids": pogs}) if pogs else [])
            },
            sections={
                r["id"]: (r["planogram_name"], r["section_name"])
                for r in (self._query("section_names", {"ids": sections}) if sections else [])
            },
            categories={
                r["id"]: r["name"]
                for r in (self._query("category_names", {"ids": categories}) if categories else [])
            },
        )

    def resolve_names(
        self,
        store_id: int,
        *,
        planogram_names: Iterable[str] = (),
        sections: Iterable[tuple[str, str]] = (),
        category_names: Iterable[str] = (),
    ) -> ResolvedIds:
        """Target side: names (compared exactly) -> ids; store POGs and sections of `store_id`.

        When a name matches several rows, the highest id (the newest) wins.
        """
        names = list(dict.fromkeys(planogram_names))
        pairs = list(dict.fromkeys((str(p), str(s)) for p, s in sections))
        cats = list(dict.fromkeys(category_names))
        resolved_pogs: dict[str, int] = {}
        if names:
            params = {"store_id": int(store_id), "names": names}
            for r in self._query("resolve_store_planograms", params):
                resolved_pogs[r["name"]] = r["id"]  # ordered by id: the last one stays
        resolved_sections: dict[tuple[str, str], int] = {}
        if pairs:
            params = {
                "store_id": int(store_id),
                "planogram_names": [p for p, _ in pairs],
                "section_names": [s for _, s in pairs],
            }
            for r in self._query("resolve_sections", params):
                resolved_sections[(r["planogram_name"], r["section_name"])] = r["id"]
        resolved_categories: dict[str, int] = {}
        if cats:
            for r in self._query("resolve_categories", {"names": cats}):
                resolved_categories[r["name"]] = r["id"]
        return ResolvedIds(resolved_pogs, resolved_sections, resolved_categories)

    # -- processing and analysis -----------------------------------------------------------------

    def processing_status(self, scan_ids: Sequence[int]) -> dict[int, ScanProcessing]:
        """Status and active report count per existing scan; `.finished` says nothing more will
        come, `.processed` that its reports are final, `.failed` that it will have none."""
        wanted = _unique(scan_ids)
        if not wanted:
            return {}
        # read as tuples, a batch at a time, and one ScanProcessing per distinct state: 100k
        # scans' rows as dicts, each with its own status text and object, took 30 MB
        states: dict[tuple[str, int], ScanProcessing] = {}
        found: dict[int, ScanProcessing] = {}

        def take(names: list[str], rows: list[tuple[Any, ...]]) -> None:
            at = {name: index for index, name in enumerate(names)}
            scan, status, count = at["id"], at["status"], at["report_count"]
            for row in rows:
                key = (row[status], int(row[count]))
                state = states.get(key)
                if state is None:
                    state = states[key] = ScanProcessing(status=key[0], report_count=key[1])
                found[row[scan]] = state

        for start in range(0, len(wanted), BATCH_IDS):
            self._query_batches("processing_status", {"ids": wanted[start : start + BATCH_IDS]}, take)
        return found

    def scan_details(self, scan_ids: Sequence[int]) -> pd.DataFrame:
        """One row per (scan, compliance report), columns SCAN_DETAIL_COLUMNS; NULL stays NA.

        Ids are Int64, percentages Float64, counts Int64 (Float64 if a count is fractional),
        is_additional_section boolean, text columns object with None.
        """
        import pandas as pd  # here, not at the top: copy and download start half a second sooner

        wanted = _unique(scan_ids)
        distinct: dict[Any, Any] = {}  # one object per distinct text, across the batches
        frames = []

        def take(names: list[str], rows: list[tuple[Any, ...]]) -> None:
            frames.append(_details_frame(names, rows, distinct))

        if wanted:
            self._query_batches("scan_details", {"ids": wanted}, take)
        if not frames:
            return _details_frame([], [], distinct)
        # a count column fractional in one batch only is Float64 in all (concat upcasts)
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def download_info(self, scan_ids: Sequence[int]) -> dict[int, DownloadInfo]:
        """Per existing scan: first report's section name, store POG id (text), files in order."""
        wanted = _unique(scan_ids)
        if not wanted:
            return {}
        return {
            r["id"]: DownloadInfo(
                section_name=r["section_name"],
                store_pog_id=r["store_pog_id"],
                files=_files(r["files"]),
            )
            for r in self._query("download_info", {"ids": wanted})
        }

    # -- the schema ------------------------------------------------------------------------------

    def table_columns(self, tables: Iterable[str]) -> dict[str, frozenset[str]]:
        """The columns this connection may read, per table among `tables` (through
        information_schema.columns); a table it cannot find or read at all is absent."""
        wanted = list(dict.fromkeys(tables))
        if not wanted:
            return {}
        found: dict[str, set[str]] = {}
        for r in self._query("table_columns", {"tables": wanted}):
            found.setdefault(str(r["table_name"]), set()).add(str(r["column_name"]))
        return {table: frozenset(columns) for table, columns in found.items()}


def _details_frame(names: list[str], rows: list[tuple[Any, ...]], distinct: dict[Any, Any]) -> pd.DataFrame:
    """scan_details' rows (tuples, columns `names`) as a frame, built column by column: letting
    pandas infer would turn NULL text into NaN and NULL numbers into float NaN; the analysis must
    see missing, never 0 or "nan". Texts share one object per distinct value (`distinct`)."""
    import pandas as pd

    at = {name: index for index, name in enumerate(names)}
    columns: dict[str, Any] = {}
    for col in SCAN_DETAIL_COLUMNS:
        values = [row[at[col]] for row in rows] if rows else []
        if col in _INT_COLUMNS:
            columns[col] = pd.array(values, dtype="Int64")
        elif col in _FLOAT_COLUMNS:
            columns[col] = pd.array([None if v is None else float(v) for v in values], dtype="Float64")
        elif col in _COUNT_COLUMNS:
            integral = all(v is None or float(v).is_integer() for v in values)
            columns[col] = pd.array(
                [None if v is None else (int(v) if integral else float(v)) for v in values],
                dtype="Int64" if integral else "Float64",
            )
        elif col == "is_additional_section":
            columns[col] = pd.array(values, dtype="boolean")
        else:
            # one object per distinct text: names repeat on thousands of rows, and a string
            # per cell made most of the memory of a 100k-scan analysis
            columns[col] = pd.Series([distinct.setdefault(v, v) for v in values], dtype=object)
    return pd.DataFrame(columns)

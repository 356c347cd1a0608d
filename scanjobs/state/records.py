"""What the state records: item kinds and statuses, one item's record, the counts of all items."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from scanjobs.errors import PERMANENT_FAILURES

__all__ = ["ItemKind", "Status", "ItemRecord", "RunRecord", "StepCount", "StateCounts"]


class _TextEnum(str, Enum):
    """A str enum that also prints and formats as its value (`f"{Status.DONE}"` is "done"), as
    `enum.StrEnum` does from Python 3.11 on; it compares and hashes as its value already."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, format_spec: str) -> str:
        return str.__format__(str.__str__(self), format_spec)


class ItemKind(_TextEnum):
    """What an item is: a scan (copy), a file of a scan (copy's uploads), an image (download)."""

    SCAN = "scan"
    FILE = "file"
    IMAGE = "image"


class Status(_TextEnum):
    """Where an item is: selected, intent recorded (in flight), done, or failed at its step."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


_KINDS: dict[str, ItemKind] = {k.value: k for k in ItemKind}
_STATUSES: dict[str, Status] = {s.value: s for s in Status}


@dataclass(frozen=True, slots=True)
class ItemRecord:
    kind: ItemKind
    key: str
    seq: int
    step: str
    status: Status
    source_id: int | None
    target_id: int | None
    request_uid: str | None
    attempts: int
    error_class: str | None
    error_message: str | None
    data: dict[str, Any]
    updated_at: float
    selected: bool = True  # False once the job no longer selects it (its record is kept)

    @property
    def final(self) -> bool:
        """Failed for good (not found, no files, refused by the platform): a plain rerun leaves
        it as it is; --retry-failed tries it again."""
        return self.status == Status.FAILED and self.error_class in PERMANENT_FAILURES

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ItemRecord:
        fields = dict(row)
        # dict lookups, not Enum calls: a run reads every item of a 100k-scan state
        fields["kind"] = _KINDS[fields["kind"]]
        fields["status"] = _STATUSES[fields["status"]]
        fields["data"] = json.loads(fields["data"]) if fields["data"] else {}
        fields["selected"] = bool(fields.get("selected", 1))
        return cls(**fields)


@dataclass(frozen=True, slots=True)
class StepCount:
    """How many items of a kind stand at one step with one status."""

    kind: ItemKind
    step: str
    status: Status
    n: int


@dataclass(frozen=True, slots=True)
class StateCounts:
    """The items of a state counted by kind, step and status (`StateStore.counts()`)."""

    rows: tuple[StepCount, ...] = ()

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, str, int]]) -> StateCounts:
        """From (kind, step, status, n) rows, kept in their order (the store sorts them)."""
        return cls(tuple(StepCount(ItemKind(k), step, Status(s), int(n)) for k, step, s, n in rows))

    @property
    def kinds(self) -> tuple[ItemKind, ...]:
        """The kinds that have items, in the order of the rows (the store's: by name)."""
        return tuple(dict.fromkeys(r.kind for r in self.rows))

    def by_status(self, kind: ItemKind) -> dict[Status, int]:
        """{status: n} of one kind; a status no item has is absent."""
        out: dict[Status, int] = {}
        for r in self.rows:
            if r.kind == kind:
                out[r.status] = out.get(r.status, 0) + r.n
        return out

    def steps(self, kind: ItemKind) -> dict[str, int]:
        """{"step/status": n} of one kind."""
        return {f"{r.step}/{r.status.value}": r.n for r in self.rows if r.kind == kind}

    def total(self, kind: ItemKind) -> int:
        return sum(r.n for r in self.rows if r.kind == kind)

    def as_dict(self) -> dict[str, dict[str, int]]:
        """The JSON shape `scanjobs status --json` prints: {kind: {status: n}} and, after each
        kind, {kind + ":steps": {"step/status": n}}."""
        out: dict[str, dict[str, int]] = {}
        for r in self.rows:
            by_status = out.setdefault(r.kind.value, {})
            by_status[r.status.value] = by_status.get(r.status.value, 0) + r.n
            out.setdefault(f"{r.kind.value}:steps", {})[f"{r.step}/{r.status.value}"] = r.n
        return out


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run of a job as the state recorded it (`StateStore.run_records()`): its start, its end
    and exit code (None while it runs, or when it was killed), and its summary (the counts)."""

    id: int
    started_at: float
    finished_at: float | None
    exit_code: int | None
    pid: int
    host: str
    summary: dict[str, Any]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> RunRecord:
        try:
            summary = json.loads(row["summary"]) if row["summary"] else {}
        except ValueError:  # a summary that is no JSON (hand-edited): the run is still listed
            summary = {}
        return cls(
            id=int(row["id"]),
            started_at=float(row["started_at"]),
            finished_at=None if row["finished_at"] is None else float(row["finished_at"]),
            exit_code=None if row["exit_code"] is None else int(row["exit_code"]),
            pid=int(row["pid"]),
            host=str(row["host"]),
            summary=summary if isinstance(summary, dict) else {},
        )

"""The validated job: frozen dataclasses that everything downstream reads (never raw dicts)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

from scanjobs.errors import JobError

Mode = Literal["copy", "download", "analyze"]
Strategy = Literal["auto", "mapped"]
CapturedAt = Literal["now", "source"]
SelectionKind = Literal["ids", "query", "file", "pairs", "from_job"]

__all__ = [
    "Mode",
    "Secret",
    "DbSpec",
    "InstanceSpec",
    "TargetSpec",
    "ScanQuery",
    "ScanSelection",
    "CopyOptions",
    "Workers",
    "BatchOptions",
    "Backoff",
    "Timeout",
    "RetryOptions",
    "AnalysisOptions",
    "DownloadOptions",
    "Job",
]


@dataclass(frozen=True, slots=True)
class Secret:
    """A credential taken from a ${VAR} reference; never printed, revealed only to connect.

    `value` is None when the variable was unset and the reference was a default (not written
    in the job file): validating the file then still works, and connecting says what to set.
    """

    what: str
    var: str
    value: str | None = field(default=None, repr=False, compare=False)

    def reveal(self) -> str:
        if self.value is None:
            raise JobError(
                f"{self.what} is not set: export {self.var} or put {self.var}=... in a .env "
                "file beside the job"
            )
        return self.value

    def __repr__(self) -> str:
        return f"Secret(${{{self.var}}})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class DbSpec:
    host: str
    port: int
    dbname: str
    user: str
    password: Secret


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    name: str
    api_url: str
    db: DbSpec
    username: Secret
    password: Secret

    def identity(self) -> dict[str, object]:
        """What identifies the instance's data (not its credentials): for fingerprints."""
        return {"api_url": self.api_url.rstrip("/"), "db": [self.db.host, self.db.port, self.db.dbname]}


@dataclass(frozen=True, slots=True)
class TargetSpec:
    instance: InstanceSpec
    store: int | None


@dataclass(frozen=True, slots=True)
class ScanQuery:
    store: int
    date_from: date | None = None
    date_to: date | None = None
    status: str = "done"
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class ScanSelection:
    kind: SelectionKind
    ids: tuple[int, ...] = ()
    query: ScanQuery | None = None
    file: Path | None = None

    def describe(self) -> str:
        if self.kind == "ids":
            return f"{len(self.ids)} scan id(s)"
        if self.kind == "query" and self.query:
            q = self.query
            span = f" from {q.date_from or '...'} to {q.date_to or '...'}"
            return f"store {q.store} scans (status {q.status}){span}"
        return f"{self.kind} {self.file}"


@dataclass(frozen=True, slots=True)
class CopyOptions:
    strategy: Strategy = "auto"
    captured_at: CapturedAt = "now"


@dataclass(frozen=True, slots=True)
class Workers:
    download: int = 20
    upload: int = 20
    create: int = 10


@dataclass(frozen=True, slots=True)
class BatchOptions:
    size: int = 10
    workers: Workers = Workers()
    max_failed_ratio: float = 0.5


@dataclass(frozen=True, slots=True)
class Backoff:
    initial: float = 1.0
    max: float = 60.0
    multiplier: float = 2.0
    jitter: bool = True


@dataclass(frozen=True, slots=True)
class Timeout:
    connect: float = 10.0
    read: float = 120.0


@dataclass(frozen=True, slots=True)
class RetryOptions:
    attempts: int = 4
    backoff: Backoff = Backoff()
    timeout: Timeout = Timeout()
    deadline: float = 1800.0


@dataclass(frozen=True, slots=True)
class AnalysisOptions:
    enabled: bool = True
    wait_for_processing: float = 1800.0


@dataclass(frozen=True, slots=True)
class DownloadOptions:
    section_max_length: int = 80


@dataclass(frozen=True, slots=True)
class Job:
    """One job file, loaded, validated, with defaults filled and paths resolved."""

    path: Path
    name: str
    mode: Mode
    source: InstanceSpec
    target: TargetSpec | None
    scans: ScanSelection
    output: Path
    copy: CopyOptions = CopyOptions()
    batch: BatchOptions = BatchOptions()
    retry: RetryOptions = RetryOptions()
    analysis: AnalysisOptions = AnalysisOptions()
    download: DownloadOptions = DownloadOptions()
    version: int = 1

    @property
    def state_path(self) -> Path:
        return self.path.with_name(self.path.stem + ".state.sqlite")

    @property
    def log_path(self) -> Path:
        return self.path.with_name(self.path.stem + ".state.log")

    def fingerprint_fields(self) -> dict[str, object]:
        """What done work depends on: changing any of it makes recorded work wrong."""
        fields: dict[str, object] = {"mode": self.mode, "source": self.source.identity()}
        if self.target is not None:
            fields["target"] = {**self.target.instance.identity(), "store": self.target.store}
        if self.mode == "copy":
            fields["strategy"] = self.copy.strategy
        if self.mode == "download":
            fields["output"] = str(self.output)
        return fields

    def fingerprint(self) -> str:
        blob = json.dumps(self.fingerprint_fields(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

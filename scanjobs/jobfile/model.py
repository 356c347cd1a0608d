"""The validated job: frozen dataclasses that everything downstream reads (never raw dicts).

One job type per mode (`CopyJob`, `DownloadJob`, `AnalyzeJob`, `CompareJob`; `Job` is their
union), so a copy job's target store is never optional. Every default of a job file lives here, on these
dataclasses: the loader passes only what the file says, and a test checks that the schema's
`default`s are these.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal, TypeAlias

from scanjobs.errors import JobError
from scanjobs.jobfile.dates import DateSpec

Mode = Literal["copy", "download", "analyze", "compare"]
Strategy = Literal["auto", "mapped"]
CapturedAt = Literal["now", "source"]
SelectionKind = Literal["ids", "query", "file", "pairs", "from_job"]

__all__ = [
    "Mode",
    "Secret",
    "DbSpec",
    "InstanceSpec",
    "CopyTarget",
    "AnalyzeTarget",
    "ScanQuery",
    "ScanSelection",
    "NotifyTarget",
    "CopyOptions",
    "Workers",
    "BatchOptions",
    "Backoff",
    "Timeout",
    "RetryOptions",
    "GateLimit",
    "Gate",
    "AnalysisOptions",
    "DownloadOptions",
    "CompareOptions",
    "BaseJob",
    "ScanJob",
    "CopyJob",
    "DownloadJob",
    "AnalyzeJob",
    "CompareJob",
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
class InstanceLimits:
    """An instance's request budget (`instances.NAME.limits`): requests per second and requests
    at once over all its endpoints, lowered by the platform's pushback when `adaptive`."""

    requests_per_second: float | None = None
    concurrent_requests: int | None = None
    adaptive: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class DbSpec:
    """Read-only PostgreSQL access to an instance; host and dbname default from its name."""

    host: str
    port: int = 5432
    dbname: str
    user: str = "proxyuser"
    password: Secret

    @staticmethod
    def default_host(instance: str) -> str:
        return f"{instance}-maint.rebotics.net"

    @staticmethod
    def default_dbname(instance: str) -> str:
        return instance


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    """How to reach one instance; the API URL defaults from its name.

    The API takes a `username` and `password` (logging in), or a ready `token` (an account with
    two-factor login has no other way in): one or the other, the rest None.
    """

    name: str
    api_url: str
    db: DbSpec
    username: Secret | None
    password: Secret | None
    token: Secret | None = None
    limits: InstanceLimits | None = None  # None: not limited

    def __post_init__(self) -> None:
        login = (self.username, self.password)
        if (self.token is not None and login != (None, None)) or (self.token is None and None in login):
            raise ValueError(f"instance {self.name}: a token, or a username and password (not both)")

    @staticmethod
    def default_api_url(instance: str) -> str:
        return f"https://{instance}.rebotics.net"

    def secrets(self) -> tuple[Secret, ...]:
        """What connecting needs: the API's secrets (the token, or username and password), then
        the database password."""
        if self.token is not None:
            return (self.token, self.db.password)
        assert self.username is not None and self.password is not None  # __post_init__
        return (self.username, self.password, self.db.password)

    def identity(self) -> dict[str, object]:
        """What identifies the instance's data (not its credentials): for fingerprints."""
        return {"api_url": self.api_url.rstrip("/"), "db": [self.db.host, self.db.port, self.db.dbname]}


@dataclass(frozen=True, slots=True)
class CopyTarget:
    """Where a copy job creates its copies: an instance and a store of it."""

    instance: InstanceSpec
    store: int


@dataclass(frozen=True, slots=True)
class AnalyzeTarget:
    """The instance whose scans an analyze job compares with the source's."""

    instance: InstanceSpec


@dataclass(frozen=True, slots=True)
class ScanQuery:
    """Scans of one or more stores created between two dates (each optional, inclusive), as
    written: a relative date means nothing until `dates(today)` resolves it."""

    stores: tuple[int, ...]
    date_from: DateSpec | None = None
    date_to: DateSpec | None = None
    status: str = "done"
    limit: int | None = None

    @property
    def relative(self) -> bool:
        """Whether a date depends on the day of the run (`-7d`, `today`...)."""
        return any(d is not None and d.relative for d in (self.date_from, self.date_to))

    def dates(self, today: date) -> tuple[date | None, date | None]:
        """(from, to) on the day `today`."""
        first = self.date_from.resolve(today) if self.date_from else None
        last = self.date_to.resolve(today) if self.date_to else None
        return first, last

    def describe(self, today: date | None = None) -> str:
        """'store 8 scans (status done) from -7d to today', with the dates they resolve to on
        `today` when given."""
        where = ("store " if len(self.stores) == 1 else "stores ") + ", ".join(map(str, self.stores))
        text = f"{where} scans (status {self.status})"
        text += f" from {self.date_from or '...'} to {self.date_to or '...'}"
        if today is not None and self.relative:
            first, last = self.dates(today)
            text += f" ({first or '...'} to {last or '...'})"
        return text


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
            return self.query.describe()
        return f"{self.kind} {self.file}"


@dataclass(frozen=True, slots=True)
class NotifyTarget:
    """Where the end of a run is announced: an apprise URL (Slack, Teams, email, a webhook...).

    The whole URL is a secret (its tokens are ${VAR} references): messages name a target by
    its place and scheme, `notify[0] (slack)`.
    """

    place: str
    scheme: str
    url: Secret

    def describe(self) -> str:
        return f"{self.place} ({self.scheme})"


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
    # None: as many as keep the workers busy (copy: `copy.plan.batch_size_for`; download: 10)
    size: int | None = None
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
    total: float = 300.0


@dataclass(frozen=True, slots=True)
class RetryOptions:
    attempts: int = 4
    backoff: Backoff = Backoff()
    timeout: Timeout = Timeout()
    deadline: float = 1800.0


@dataclass(frozen=True, slots=True)
class GateLimit:
    """One limit of a quality gate: at most `count` scans, or at most `share` (a fraction) of
    the scans, with `subject` (an analysis comment, or a compare class)."""

    subject: str
    count: int | None = None
    share: float | None = None

    def __post_init__(self) -> None:
        if (self.count is None) == (self.share is None):
            raise ValueError(f"gate limit {self.subject!r}: a count or a share (one of them)")

    def describe(self) -> str:
        """The limit as a job file writes it: `5%` or `3`."""
        return f"{self.share * 100:g}%" if self.share is not None else str(self.count)


@dataclass(frozen=True, slots=True)
class Gate:
    """A quality gate (`analysis.gate`, `compare.gate`): a run whose report breaches any of its
    limits ends with exit code 6 (`ExitCode.GATE`), its reports written all the same."""

    limits: tuple[GateLimit, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.limits)

    def limit(self, subject: str) -> GateLimit | None:
        return next((limit for limit in self.limits if limit.subject == subject), None)


@dataclass(frozen=True, slots=True)
class AnalysisOptions:
    enabled: bool = True
    wait_for_processing: float = 1800.0
    gate: Gate = Gate()


@dataclass(frozen=True, slots=True)
class DownloadOptions:
    section_max_length: int = 80


@dataclass(frozen=True, slots=True)
class CompareOptions:
    """mode compare: the two analyses, each a copy or analyze job file (the analysis in its
    output) or a results folder holding an analysis, both resolved; and the gate."""

    baseline: Path
    candidate: Path
    gate: Gate = Gate()


def _fingerprint(fields: dict[str, object]) -> str:
    blob = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseJob:
    """What every job has: one job file, loaded, validated, defaults filled, paths resolved.

    The fingerprint (`fingerprint_fields()` hashed) is recorded in the job's state, and copy
    jobs derive their upload request ids from it: what it covers and how it is spelt must not
    change, or every existing job would look changed.
    """

    path: Path
    name: str
    output: Path
    notify: tuple[NotifyTarget, ...] = ()
    version: int = 1

    @staticmethod
    def default_name(path: Path) -> str:
        """The name of a job whose file gives none: the file's name without extension."""
        return path.stem

    @staticmethod
    def default_output(path: Path) -> str:
        """The output of a job whose file gives none, relative to the file's folder."""
        return f"results/{path.stem}"

    @property
    def state_path(self) -> Path:
        return self.path.with_name(self.path.stem + ".state.sqlite")

    @property
    def log_path(self) -> Path:
        return self.path.with_name(self.path.stem + ".state.log")

    def instances(self) -> tuple[InstanceSpec, ...]:
        """The instances the job connects to (none for a compare job)."""
        return ()

    def describe(self) -> str:
        """What the job works on, in a few words (for `validate`)."""
        raise NotImplementedError

    def fingerprint_fields(self) -> dict[str, object]:
        """What done work depends on: changing any of it makes recorded work wrong."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        return _fingerprint(self.fingerprint_fields())


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanJob(BaseJob):
    """A job on platform scans (copy, download, analyze): a source instance and a selection."""

    source: InstanceSpec
    scans: ScanSelection
    batch: BatchOptions = BatchOptions()
    retry: RetryOptions = RetryOptions()

    def instances(self) -> tuple[InstanceSpec, ...]:
        """The instances the job connects to: the source, then the target if it has one."""
        return (self.source,)

    def describe(self) -> str:
        return self.scans.describe()


@dataclass(frozen=True, slots=True, kw_only=True)
class CopyJob(ScanJob):
    """mode copy: source scans become scans of `target.store`, then (optionally) the analysis."""

    mode: Literal["copy"] = field(default="copy", init=False)
    target: CopyTarget
    copy: CopyOptions = CopyOptions()
    analysis: AnalysisOptions = AnalysisOptions()

    def instances(self) -> tuple[InstanceSpec, ...]:
        return (self.source, self.target.instance)

    def fingerprint_fields(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "source": self.source.identity(),
            "target": {**self.target.instance.identity(), "store": self.target.store},
            "strategy": self.copy.strategy,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class DownloadJob(ScanJob):
    """mode download: the images of source scans into `output`; it reads only the source."""

    mode: Literal["download"] = field(default="download", init=False)
    download: DownloadOptions = DownloadOptions()

    def fingerprint_fields(self) -> dict[str, object]:
        return {"mode": self.mode, "source": self.source.identity(), "output": str(self.output)}


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalyzeJob(ScanJob):
    """mode analyze: compare source/target pairs (`scans` is pairs or from_job).

    `analysis.enabled` does not apply (the analysis is what the job does). A `target.store`
    in the file is accepted and does nothing, as before; it is kept in
    `target_store_as_written` only because fingerprints have always included it.
    """

    mode: Literal["analyze"] = field(default="analyze", init=False)
    target: AnalyzeTarget
    analysis: AnalysisOptions = AnalysisOptions()
    target_store_as_written: int | None = None

    def instances(self) -> tuple[InstanceSpec, ...]:
        return (self.source, self.target.instance)

    def fingerprint_fields(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "source": self.source.identity(),
            "target": {**self.target.instance.identity(), "store": self.target_store_as_written},
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CompareJob(BaseJob):
    """mode compare: two analyses of the same source scans, row by row (no platform access)."""

    mode: Literal["compare"] = field(default="compare", init=False)
    compare: CompareOptions

    def describe(self) -> str:
        return f"{self.compare.baseline} (baseline) vs {self.compare.candidate} (candidate)"

    def fingerprint_fields(self) -> dict[str, object]:
        # a compare is recomputed whole by every run: no recorded work depends on its sides
        return {"mode": self.mode, "output": str(self.output)}


Job: TypeAlias = CopyJob | DownloadJob | AnalyzeJob | CompareJob
"""Any job; narrow it by `isinstance` (or `match`) to reach a mode's own sections."""

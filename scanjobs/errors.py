"""Every error scanjobs reports on purpose, each with a user message and an exit code."""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "ExitCode",
    "ScanjobsError",
    "JobError",
    "StateError",
    "LockedError",
    "PlatformError",
    "UnreachableError",
    "AuthError",
    "PermanentError",
    "TransientError",
    "ItemError",
    "NotFoundOnSource",
    "NoFiles",
    "Untranslatable",
    "StepFailed",
    "PERMANENT_FAILURES",
]


class ExitCode(IntEnum):
    """Process exit codes: a contract with scripts and CI (the README lists them)."""

    OK = 0
    PARTIAL = 1  # finished, but some items failed; a rerun retries them
    INVALID = 2  # invalid job file or usage
    INTERNAL = 3  # a bug: traceback written to a log beside the state
    STATE = 4  # state unusable, newer format, or locked by another run
    UNREACHABLE = 5  # platform unreachable or auth refused after retries
    GATE = 6  # finished and reported, but the job's quality gate was breached
    INTERRUPTED = 130


class ScanjobsError(Exception):
    """Base of every expected error; `str(err)` is the one-line user message."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class JobError(ScanjobsError):
    """The job file (or the command line) is invalid; `problems` lists every finding."""

    exit_code = ExitCode.INVALID

    def __init__(self, message: str, problems: list[str] | None = None, *, hint: str | None = None):
        self.problems = list(problems or [])
        self.reason = message  # the message without the problems
        full = message if not self.problems else message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(full, hint=hint)


class StateError(ScanjobsError):
    """The state file cannot be used as it is (corrupt, newer format, job changed)."""

    exit_code = ExitCode.STATE


class LockedError(StateError):
    """Another run of the same job holds the lock."""


class PlatformError(ScanjobsError):
    """Something the platform (API or database) answered or failed to answer."""

    exit_code = ExitCode.UNREACHABLE


class UnreachableError(PlatformError):
    """The API or the database cannot be reached, even after retries."""


class AuthError(PlatformError):
    """Login refused (wrong username/password) or database authentication failed."""


class ItemError(ScanjobsError):
    """A failure that belongs to one item (scan or file): recorded, and the run goes on.

    A `permanent` one says the same thing whatever the retry: a plain rerun leaves it as it is
    (final), --retry-failed tries it again, --accept-permanent lets the run pass with it.
    """

    exit_code = ExitCode.PARTIAL
    permanent = False


class PermanentError(ItemError):
    """The platform refused a request for good (400 with its body, 403, 404, ...)."""

    permanent = True

    def __init__(self, message: str, *, status: int | None = None, body: str | None = None):
        super().__init__(message)
        self.status = status
        self.body = body


class TransientError(ItemError):
    """A retryable failure that outlived its retries (502/503/504/424/429, resets, timeouts)."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class NotFoundOnSource(ItemError):
    """A selected scan id does not exist on the source."""

    permanent = True


class NoFiles(ItemError):
    """The source scan has no files: there is nothing to copy or download."""

    permanent = True


class Untranslatable(ItemError):
    """A mapping hint has no counterpart (by name) on the target (strategy mapped)."""

    permanent = True


class StepFailed(Exception):
    """Carries an item's failure out of a stage that ran it elsewhere (a file's download or
    upload, in its own pool) to the item that waits for it, with the step it failed at.

    Not an error of its own: the item records `cause` (its class and message) at `step`.
    """

    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(f"{step}: {cause}")
        self.step = step
        self.cause = cause


# The class names (as the state records them) of the failures a plain rerun leaves as they are.
PERMANENT_FAILURES = frozenset(
    cls.__name__ for cls in (PermanentError, NotFoundOnSource, NoFiles, Untranslatable) if cls.permanent
)

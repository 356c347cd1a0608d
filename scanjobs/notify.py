"""The end of a run announced to people: its summary (and a gate's verdict) sent to each `notify` target.

apprise speaks Slack, Teams, email, plain webhooks and many more; a target is an apprise URL,
held as a secret. A notification that fails is a warning: the run's exit code never changes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scanjobs.events import Events
from scanjobs.jobfile.model import NotifyTarget, Secret

if TYPE_CHECKING:
    import apprise

__all__ = ["RunEnd", "SummaryKeeper", "message", "announce", "unusable_targets"]

# Parts of a URL (between its separators) long enough to be a token, a password or a host.
_URL_PARTS = re.compile(r"[/:@?&=#+,]+")


@dataclass(frozen=True, slots=True)
class RunEnd:
    """What a notification says about one run."""

    job: str
    mode: str
    exit_code: int
    status: str  # ExitCode's name in lower case: ok, partial, interrupted, ...
    summary: str  # the run's summary text, or why it stopped
    verdict: str | None = None  # a quality gate's verdict, when the job has a gate


def message(end: RunEnd) -> tuple[str, str, apprise.NotifyType]:
    """Pure: (title, body, kind) of the notification of `end`."""
    import apprise  # loaded when a run ends with targets: its import would slow every run's start

    title = f"scanjobs {end.mode} job {end.job}: {end.status} (exit {end.exit_code})"
    body = end.summary.strip() or "(no summary)"
    if end.verdict:
        body += f"\n\ngate: {end.verdict}"
    if end.exit_code == 0:
        kind = apprise.NotifyType.SUCCESS
    elif end.status in ("partial", "interrupted"):
        kind = apprise.NotifyType.WARNING
    else:
        kind = apprise.NotifyType.FAILURE
    return title, body, kind


_SUMMARIES = ("summary", "analysis_summary", "compare_summary")


class SummaryKeeper:
    """An event sink that keeps the texts of the run's summaries (the copy's or download's, the
    analysis', the compare's), for its notification."""

    def __init__(self) -> None:
        self._texts: dict[str, str] = {}

    @property
    def text(self) -> str:
        return "\n".join(self._texts[e] for e in _SUMMARIES if e in self._texts)

    def handle(self, event: str, fields: Mapping[str, Any]) -> None:
        if event in _SUMMARIES and fields.get("text"):
            self._texts[event] = str(fields["text"])

    def close(self) -> None:
        pass


def _redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with each secret, and each part of one that could be a token or a host, as ***."""
    parts = {part for secret in secrets for part in [secret, *_URL_PARTS.split(secret)] if len(part) >= 6}
    for part in sorted(parts, key=len, reverse=True):
        text = text.replace(part, "***")
    return text


def _why(log: str, secrets: Sequence[str]) -> str:
    """The last warning or error apprise logged, without a secret in it."""
    lines = [line for line in log.splitlines() if " - WARNING - " in line or " - ERROR - " in line]
    last = lines[-1].split(" - ", 2)[-1] if lines else "no reason given"
    return _redact(last, secrets)


def unusable_targets(targets: Sequence[NotifyTarget]) -> list[NotifyTarget]:
    """The targets apprise cannot use (an unknown scheme, a URL it cannot parse): no network."""
    import apprise  # only when there are targets (see `message`)

    return [t for t in targets if not apprise.Apprise().add(t.url.reveal())]


def announce(targets: Sequence[NotifyTarget], end: RunEnd, events: Events, secrets: Iterable[Secret]) -> None:
    """Send `end` to each target; a failure is a `warning` event, never an exception.

    `secrets` are the job's other secrets (its instances'): none may appear in a warning.
    """
    import apprise  # only when there are targets (see `message`)

    title, body, kind = message(end)
    hidden = [s.value for s in secrets if s.value] + [t.url.value for t in targets if t.url.value]
    for target in targets:
        sender = apprise.Apprise()
        try:
            if not sender.add(target.url.reveal()):
                events.emit(
                    "warning",
                    message=f"notification to {target.describe()} not sent: apprise cannot use this URL",
                )
                continue
            with apprise.LogCapture(level=logging.WARNING) as log:  # type: ignore[no-untyped-call]
                sent = bool(sender.notify(body=body, title=title, notify_type=kind))
            if sent:
                events.emit("info", message=f"notified {target.describe()}")
            else:
                why = _why(log.getvalue(), hidden)
                events.emit("warning", message=f"notification to {target.describe()} failed: {why}")
        except Exception as exc:  # a notifier's own bug must not fail a run that is over
            why = _redact(f"{type(exc).__name__}: {exc}", hidden)
            events.emit("warning", message=f"notification to {target.describe()} failed: {why}")

"""Dates as a job's scan query writes them: ISO dates, or relative to the day a job's selection is fixed.

Relative dates count from a day (`today`), never from a time: the platform selects by creation
date. `today` is the machine's local date, fixed by the first run of a job and kept in its state
(`modes/resources.selection_day`), so a run resumed the next day selects what the first one did.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from dateutil.relativedelta import relativedelta

from scanjobs.errors import JobError

__all__ = ["DateSpec", "local_today", "TODAY_VARIABLE"]

# A test hook: the day a run takes as today (YYYY-MM-DD), in place of the machine's local date.
TODAY_VARIABLE = "SCANJOBS_TODAY"
_RELATIVE = re.compile(r"^-(\d{1,4})([dwm])$")
_NAMED = {"today": 0, "yesterday": 1}


@dataclass(frozen=True, slots=True)
class DateSpec:
    """A `from` or `to` as written: `2025-08-01`, `today`, `yesterday`, or `-N` followed by `d`
    (days), `w` (weeks) or `m` (calendar months: -1m on 31 March is 28 or 29 February) before today."""

    text: str

    @staticmethod
    def parse(text: str) -> DateSpec:
        """The spec of `text`; ValueError says what is allowed."""
        spec = DateSpec(text.strip())
        if not spec.relative:
            try:
                date.fromisoformat(spec.text)
            except ValueError:
                raise ValueError(
                    f"{text!r} is not a date: write YYYY-MM-DD, today, yesterday, or -N with d (days), "
                    "w (weeks) or m (months), e.g. -7d"
                ) from None
        return spec

    @property
    def relative(self) -> bool:
        return self.text in _NAMED or _RELATIVE.match(self.text) is not None

    def resolve(self, today: date) -> date:
        """The date this spec names on the day `today`."""
        if self.text in _NAMED:
            return today - timedelta(days=_NAMED[self.text])
        match = _RELATIVE.match(self.text)
        if match is None:
            return date.fromisoformat(self.text)
        n, unit = int(match.group(1)), match.group(2)
        if unit == "m":
            resolved: date = today - relativedelta(months=n)
            return resolved
        return today - timedelta(days=n * (7 if unit == "w" else 1))

    def __str__(self) -> str:
        return self.text


def local_today(environ: Mapping[str, str] | None = None) -> date:
    """The machine's local date, or SCANJOBS_TODAY's (a test hook: simulate the next day)."""
    given = (os.environ if environ is None else environ).get(TODAY_VARIABLE)
    if not given:
        return date.today()
    try:
        return date.fromisoformat(given)
    except ValueError:
        raise JobError(f"{TODAY_VARIABLE}={given!r} is not a date (YYYY-MM-DD)") from None

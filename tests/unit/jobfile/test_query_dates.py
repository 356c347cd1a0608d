"""scans.query as people write it: relative dates, several stores (issue 15, point 4)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scanjobs.cli import main
from scanjobs.errors import JobError
from scanjobs.jobfile import load_job
from scanjobs.jobfile.dates import DateSpec, local_today

DAY = date(2026, 3, 31)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-08-01", date(2025, 8, 1)),
        ("today", DAY),
        ("yesterday", date(2026, 3, 30)),
        ("-7d", date(2026, 3, 24)),
        ("-0d", DAY),
        ("-2w", date(2026, 3, 17)),
        ("-1m", date(2026, 2, 28)),  # a calendar month: 31 March less a month is the last of February
        ("-3m", date(2025, 12, 31)),
        ("-12m", date(2025, 3, 31)),
    ],
)
def test_a_date_resolves_on_the_day_given(text: str, expected: date) -> None:
    spec = DateSpec.parse(text)
    assert spec.resolve(DAY) == expected
    assert spec.relative == (text != "2025-08-01")


@pytest.mark.parametrize("text", ["2025-02-30", "-7", "7d", "+7d", "-7y", "last week", "-7 d", ""])
def test_other_dates_are_refused_with_what_is_allowed(text: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD, today, yesterday"):
        DateSpec.parse(text)


@given(st.dates(min_value=date(1900, 1, 1)), st.integers(0, 500))
def test_days_and_weeks_are_exact(today: date, n: int) -> None:
    assert (today - DateSpec.parse(f"-{n}d").resolve(today)).days == n
    assert (today - DateSpec.parse(f"-{n}w").resolve(today)).days == 7 * n


def test_the_day_is_the_machine_s_unless_the_test_hook_sets_it() -> None:
    assert local_today({}) == date.today()
    assert local_today({"SCANJOBS_TODAY": "2026-03-31"}) == DAY
    with pytest.raises(JobError, match="SCANJOBS_TODAY"):
        local_today({"SCANJOBS_TODAY": "tomorrow"})


def _job(tmp_path: Path, query: str, mode: str = "download") -> Path:
    path = tmp_path / "job.yaml"
    target = "target: {instance: b, store: 9}\n" if mode == "copy" else ""
    path.write_text(
        f"version: 1\nmode: {mode}\nsource: a\n{target}scans: {{query: {query}}}\n"
        "instances: {a: {}, b: {}}\n"
    )
    return path


def test_relative_dates_and_several_stores_load(tmp_path: Path) -> None:
    job = load_job(_job(tmp_path, "{store: [8, 9], from: -7d, to: today}"), environ={})
    q = job.scans.query
    assert q is not None and q.stores == (8, 9) and q.relative
    assert q.dates(DAY) == (date(2026, 3, 24), DAY)
    assert q.describe(DAY) == "stores 8, 9 scans (status done) from -7d to today (2026-03-24 to 2026-03-31)"
    one = load_job(_job(tmp_path, "{store: 8, from: 2026-03-24}"), environ={}).scans.query
    assert one is not None and one.stores == (8,) and not one.relative
    assert one.dates(DAY) == (date(2026, 3, 24), None)


def test_relative_dates_leave_the_fingerprint_alone(tmp_path: Path) -> None:
    """A relative date must not make the job look changed day after day (nor any selection)."""
    prints = set()
    for query, today in (
        ("{store: 8, from: -7d}", "2026-03-31"),
        ("{store: 8, from: -7d}", "2026-04-01"),
        ("{store: [8, 9], from: 2026-03-24, to: today}", "2026-04-01"),
    ):
        job = load_job(_job(tmp_path, query, "copy"), environ={"SCANJOBS_TODAY": today})
        prints.add(job.fingerprint())
    assert len(prints) == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("{store: 8, from: today, to: -1w}", "`to` (-1w) is before `from` (today)"),
        ("{store: 8, from: 2026-03-02, to: 2026-03-01}", "`to` (2026-03-01) is before `from` (2026-03-02)"),
        ("{store: 8, from: -7days}", "scans.query.from"),
        ("{store: 8, to: 2026-02-30}", "'2026-02-30' is not a date"),
        ("{store: []}", "scans.query.store"),
        ("{store: [8, 8]}", "scans.query.store"),
        ("{store: [8, 0]}", "scans.query.store.1"),
    ],
)
def test_a_bad_query_is_refused_by_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], query: str, message: str
) -> None:
    path = _job(tmp_path, query)
    with pytest.raises(JobError) as info:
        load_job(path, environ={})
    assert message in str(info.value)
    assert main(["validate", str(path)]) == 2
    assert message in capsys.readouterr().err

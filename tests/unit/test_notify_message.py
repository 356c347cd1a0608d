"""The notification of a run's end, the pure parts, and the job file's `notify` rules (issue 15, point 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanjobs.errors import JobError
from scanjobs.jobfile import load_job
from scanjobs.notify import RunEnd, SummaryKeeper, message, unusable_targets
from scanjobs.notify import _redact as redact


def _job(tmp_path: Path, notify: str, environ: dict[str, str] | None = None) -> object:
    path = tmp_path / "job.yaml"
    text = f"version: 1\nmode: download\nsource: a\nscans: {{ids: [1]}}\nnotify: {notify}\n"
    path.write_text(text + "instances: {a: {}}\n")
    return load_job(path, environ=environ or {})


def test_the_message_gives_the_summary_the_verdict_and_the_outcome() -> None:
    end = RunEnd(
        "nightly", "copy", 1, "partial", "12 done, 1 failed", verdict="Wrong POG Name Mapping 9% > 5%"
    )
    title, body, kind = message(end)
    assert title == "scanjobs copy job nightly: partial (exit 1)"
    assert body == "12 done, 1 failed\n\ngate: Wrong POG Name Mapping 9% > 5%"
    assert kind == "warning"
    assert message(RunEnd("n", "copy", 0, "ok", "done"))[2] == "success"
    assert message(RunEnd("n", "copy", 5, "unreachable", "stopped by ..."))[2] == "failure"


def test_the_keeper_keeps_the_last_summary_text() -> None:
    keeper = SummaryKeeper()
    keeper.handle("summary", {"text": "first"})
    keeper.handle("warning", {"message": "x"})
    keeper.handle("summary", {"text": "12 done"})
    assert keeper.text == "12 done"


def test_a_secret_and_each_long_part_of_it_are_hidden() -> None:
    url = "slack://T1234567/B7654321/abcdefghijk"
    text = "failed at https://hooks.slack.com/services/T1234567/B7654321/abcdefghijk; token abcdefghijk"
    assert redact(text, [url]) == "failed at https://hooks.slack.com/services/***/***/***; token ***"


def test_targets_are_secrets_with_a_place_and_a_scheme(tmp_path: Path) -> None:
    job = _job(
        tmp_path,
        '["${SLACK}", "json://127.0.0.1:8080/hook", "mailtos://${MAIL_USER}:${MAIL_PASSWORD}@example.com"]',
        {"SLACK": "slack://T1/B2/C3", "MAIL_USER": "qa", "MAIL_PASSWORD": "pw-12345"},
    )
    targets = job.notify
    assert [t.describe() for t in targets] == ["notify[0] (slack)", "notify[1] (json)", "notify[2] (mailtos)"]
    assert targets[2].url.reveal() == "mailtos://qa:pw-12345@example.com"
    assert "pw-12345" not in repr(job) and "T1/B2" not in repr(job)
    assert unusable_targets(targets) == []
    unknown = _job(tmp_path, '["${HOOK}"]', {"HOOK": "nosuch://x"}).notify
    assert [t.describe() for t in unusable_targets(unknown)] == ["notify[0] (nosuch)"]


@pytest.mark.parametrize(
    ("notify", "message"),
    [
        ('["slack://T1/B2/C3"]', "a slack:// URL written out holds its tokens"),
        ('["json://u:p@127.0.0.1/hook"]', "a json:// URL written out holds its tokens"),
        ('["json://127.0.0.1/hook?token=abc"]', "a json:// URL written out holds its tokens"),
        ('["not a url"]', "not an apprise URL"),
        ('["${UNSET_HOOK}"]', "${UNSET_HOOK} is not set"),
        ("[]", "notify"),
    ],
)
def test_a_target_that_would_hold_a_secret_or_is_no_url_is_refused(
    tmp_path: Path, notify: str, message: str
) -> None:
    with pytest.raises(JobError) as info:
        _job(tmp_path, notify)
    assert message in str(info.value)
    assert "T1/B2" not in str(info.value) and "token=abc" not in str(info.value)

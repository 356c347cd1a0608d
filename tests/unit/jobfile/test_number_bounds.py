"""Every number of a job fits what it feeds (PostgreSQL bigint ids, sleeps, socket timeouts,
thread pools), or the job is refused by `validate` with its place (issue 12, point 12)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from scanjobs.cli import main
from scanjobs.errors import JobError
from scanjobs.jobfile import load_job, load_schema
from scanjobs.jobfile.scanlist import MAX_SCAN_ID

BIGINT = 2**63 - 1
JOB: dict[str, Any] = {
    "version": 1,
    "mode": "copy",
    "source": "a",
    "target": {"instance": "b", "store": 8},
    "scans": {"ids": [1]},
    "instances": {"a": {}, "b": {}},
}


def _with(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(JOB))
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
    node[path[-1]] = value
    return data


def _write(tmp_path: Path, data: dict[str, Any] | str) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def _refused_at(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: dict[str, Any] | str, where: str
) -> str:
    path = _write(tmp_path, data)
    with pytest.raises(JobError) as info:
        load_job(path, environ={})
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert where in str(info.value) and where in err, err
    return str(info.value)


ID_PLACES: list[tuple[str | int, ...]] = [
    ("scans", "ids", 0),
    ("target", "store"),
    ("scans", "query", "store"),
    ("scans", "query", "limit"),
]


@pytest.mark.parametrize("place", ID_PLACES, ids=lambda p: ".".join(map(str, p)))
def test_an_id_beyond_bigint_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], place: tuple[str | int, ...]
) -> None:
    """issue 12, point 12: a scan id of 2**63 passed validate and failed the run (bigint out of range)."""
    data = _with(place, BIGINT + 1)
    if place[1] == "query":
        data["scans"] = {"query": {"store": 1, place[-1]: BIGINT + 1}}
    _refused_at(tmp_path, capsys, data, ".".join(map(str, place)))
    data = _with(place, BIGINT)
    if place[1] == "query":
        data["scans"] = {"query": {"store": 1, place[-1]: BIGINT}}
    load_job(_write(tmp_path, data), environ={})


TIME_PLACES: list[tuple[str, ...]] = [
    ("retry", "timeout", "read"),
    ("retry", "timeout", "connect"),
    ("retry", "backoff", "initial"),
    ("retry", "backoff", "max"),
    ("retry", "deadline"),
    ("analysis", "wait_for_processing"),
]


def _yaml_number(place: tuple[str, ...], yaml_number: str) -> str:
    """The job with the number at `place` as YAML writes it (JSON has no `.inf` or `.nan`, and
    PyYAML reads JSON's `1e+20` as text)."""
    data = _with(place, 0)
    if place[-1] == "initial":  # initial <= max is a rule of its own
        data["retry"]["backoff"]["max"] = 0
    return json.dumps(data).replace(": 0", f": {yaml_number}")


@pytest.mark.parametrize("value", ["1.0e+20", "1.0e+10", ".inf"])
@pytest.mark.parametrize("place", TIME_PLACES, ids=".".join)
def test_a_time_too_long_for_a_sleep_or_a_socket_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], place: tuple[str, ...], value: str
) -> None:
    """issue 12, point 12: `timeout.read: 1.0e+20` passed validate; the socket timeout then
    overflowed (OverflowError: timestamp out of range), an internal error at run time."""
    _refused_at(tmp_path, capsys, _yaml_number(place, value), ".".join(place))


@pytest.mark.parametrize("text", ["99999999999d", "31d", "720h1s"])
@pytest.mark.parametrize("place", [("retry", "deadline"), ("analysis", "wait_for_processing")], ids=".".join)
def test_a_duration_text_too_long_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], place: tuple[str, ...], text: str
) -> None:
    """issue 12, point 12: the text form of a duration has the number form's bound."""
    _refused_at(tmp_path, capsys, _with(place, text), ".".join(place))
    job = load_job(_write(tmp_path, _with(place, "30d")), environ={})
    assert getattr(getattr(job, place[0]), place[1]) == 30 * 86400


def test_the_longest_time_is_the_schema_s(tmp_path: Path) -> None:
    """issue 12, point 12: one bound for every time, stated in the schema."""
    defs = load_schema()["$defs"]
    longest = defs["positiveNumber"]["maximum"]
    assert longest == 30 * 86400
    assert [b.get("maximum") for b in defs["duration"]["oneOf"]] == [longest, None]


NUMBER_PLACES: list[tuple[str, ...]] = [
    *TIME_PLACES,
    ("batch", "max_failed_ratio"),
    ("retry", "backoff", "multiplier"),
]


@pytest.mark.parametrize("place", NUMBER_PLACES, ids=".".join)
def test_not_a_number_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], place: tuple[str, ...]
) -> None:
    """issue 12, point 12: `.nan` passed every minimum and maximum (NaN compares false)."""
    message = _refused_at(tmp_path, capsys, _yaml_number(place, ".nan"), ".".join(place))
    assert "finite" in message or "duration" in message


INTEGER_PLACES: list[tuple[str | int, ...]] = [
    ("batch", "size"),
    ("batch", "workers", "download"),
    ("retry", "attempts"),
    ("scans", "ids", 0),
    ("target", "store"),
    ("instances", "a", "db", "port"),
]


@pytest.mark.parametrize("place", INTEGER_PLACES, ids=lambda p: ".".join(map(str, p)))
def test_a_count_written_as_a_float_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], place: tuple[str | int, ...]
) -> None:
    """issue 12, point 12: `batch.size: 5.0` passed the schema ("integer" admits 5.0), then
    deque(maxlen=5.0) raised TypeError at run time."""
    _refused_at(tmp_path, capsys, _with(place, 5.0), ".".join(map(str, place)))


@pytest.mark.parametrize("endpoint", ["download", "upload", "create"])
def test_workers_are_bounded(tmp_path: Path, capsys: pytest.CaptureFixture[str], endpoint: str) -> None:
    """issue 12, point 12: each worker is a thread (two, with retries): a million of them is not a
    setting, it is a crash when the system refuses the next thread."""
    _refused_at(
        tmp_path, capsys, _with(("batch", "workers", endpoint), 1_000_000), f"batch.workers.{endpoint}"
    )
    job = load_job(_write(tmp_path, _with(("batch", "workers", endpoint), 256)), environ={})
    assert getattr(job.batch.workers, endpoint) == 256


def test_the_largest_id_is_the_scan_list_s() -> None:
    """issue 12, point 12: the job's ids and its CSV's ids have one bound, PostgreSQL's bigint."""
    assert load_schema()["$defs"]["positiveInt"]["maximum"] == MAX_SCAN_ID == BIGINT


# A refusal names a value without echoing all of it: a text of thousands of characters where a
# number, a key or a name belongs is shown cut short, with its length, in every message.
LONG = "1" * 5000 + ".5e3"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda job: job["batch"].update(size=LONG), "batch.size"),  # a text where a number belongs
        (lambda job: job["batch"].update({"x" * 5000: 1}), "unknown key"),  # an unknown key
        (lambda job: job["copy"].update(strategy="y" * 5000), "copy.strategy"),  # not one of the choices
        (lambda job: job["instances"].update({"z" * 5000: {"api_url": 5}}), "api_url"),  # under a long key
    ],
)
def test_a_long_value_is_shown_cut_short(tmp_path: Path, change: Any, named: str) -> None:
    job = json.loads(json.dumps(JOB)) | {"batch": {}, "copy": {}}
    change(job)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))  # a key over 1024 characters written as an explicit key
    with pytest.raises(JobError) as refused:
        load_job(path)
    text = str(refused.value)
    assert named in text and "characters)" in text
    assert max(len(line) for line in text.splitlines()) < 400, text[:1000]

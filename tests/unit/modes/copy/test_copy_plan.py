"""The copy's pure decisions: the plan, the create's uid, how many scans to keep in flight."""

from __future__ import annotations

from scanjobs.jobfile.model import BatchOptions, Workers
from scanjobs.modes.copy.plan import (
    MAX_DEFAULT_IN_FLIGHT,
    batch_size_for,
    plan_copy,
    request_uid,
    scans_in_flight_needed,
    upload_uid,
)
from scanjobs.state import ItemRecord


def record(key: str, status: str, uid: str | None = None) -> ItemRecord:
    return ItemRecord("scan", key, 1, "create", status, int(key), None, uid, 0, None, None, {}, 0.0)


def test_plan_orders_unfinished_then_failed_then_new_and_limits_new_only() -> None:
    records = {
        "1": record("1", "done"),
        "2": record("2", "failed"),
        "3": record("3", "running"),
        "4": record("4", "pending", uid="u"),
    }
    plan = plan_copy([1, 2, 3, 4, 5, 6, 7], records, limit=2)
    assert plan.resume == (3, 4) and plan.retry == (2,) and plan.new == (5, 6)
    assert plan.already_done == (1,) and plan.deferred == 1
    assert plan.todo == (3, 4, 2, 5, 6)
    only_failed = plan_copy([1, 2, 3, 5], records, retry_failed_only=True)
    assert only_failed.todo == (3, 2) and only_failed.deferred == 1


def test_done_ids_count_as_done_without_their_records() -> None:
    records = {"2": record("2", "failed"), "3": record("3", "running")}
    with_ids = plan_copy([1, 2, 3, 4], records, done_ids={1})
    with_records = plan_copy([1, 2, 3, 4], {**records, "1": record("1", "done")})
    assert with_ids == with_records
    assert with_ids.already_done == (1,) and with_ids.retry == (2,) and with_ids.resume == (3,)
    assert with_ids.new == (4,)


def test_request_uid_is_stable_and_scoped() -> None:
    a = request_uid("epoch1", "fp", "https://albt", 5)
    assert a == request_uid("epoch1", "fp", "https://albt", 5)
    assert a != request_uid("epoch2", "fp", "https://albt", 5)  # --restart: a new state epoch
    assert a != request_uid("epoch1", "fp", "https://albt", 6)


def test_upload_uid_is_stable_and_never_a_create_uid() -> None:
    """Issue 13, point 4: the platform's client sends REB-CLIENT-REQUEST-UID with uploads too."""
    a = upload_uid("epoch1", "fp", "https://albt", 5)
    assert a == upload_uid("epoch1", "fp", "https://albt", 5)  # derived again after a crash
    assert a != upload_uid("epoch2", "fp", "https://albt", 5)  # --restart: a new state epoch
    assert a != upload_uid("epoch1", "fp2", "https://albt", 5)  # another job
    assert a != upload_uid("epoch1", "fp", "https://albt", 6)
    assert a != request_uid("epoch1", "fp", "https://albt", 5)  # file 5 is not scan 5


def test_scans_in_flight_needed_follows_the_slowest_stage() -> None:

    legacy = Workers(download=20, upload=20, create=10)
    assert scans_in_flight_needed(legacy, 3) == 14  # downloads: 20 / 6 scans a round trip, x 4
    assert scans_in_flight_needed(legacy, 1) == 40  # downloads: 10 a round trip; create: 10
    assert scans_in_flight_needed(Workers(download=20, upload=20, create=2), 1) == 8  # creates
    assert scans_in_flight_needed(legacy, 0) == 40  # no files counted: as for one


def test_the_default_batch_keeps_the_workers_busy() -> None:
    """Issue 14, point 1: without batch.size, a copy keeps twice the Little's-law figure in flight
    (10 scans gave 56-59% of the bound); a given batch.size is honoured."""
    legacy = Workers(download=20, upload=20, create=10)
    assert batch_size_for(BatchOptions(workers=legacy), 3) == 28
    assert batch_size_for(BatchOptions(workers=legacy), 1) == 80
    assert batch_size_for(BatchOptions(size=7, workers=legacy), 3) == 7
    many = Workers(download=256, upload=256, create=256)
    assert batch_size_for(BatchOptions(workers=many), 1) == MAX_DEFAULT_IN_FLIGHT

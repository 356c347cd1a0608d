"""The named transitions (record_intent, mark_done, mark_failed), each one transaction, and the
typed records and counts they leave."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanjobs import failpoints
from scanjobs.state import (
    FORMAT_VERSION,
    MIGRATIONS,
    ItemKind,
    ItemRecord,
    StateCounts,
    StateStore,
    Status,
    StepCount,
)


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore.open(tmp_path / "j.state.sqlite", fingerprint="f")


def test_intent_done_failed(store: StateStore) -> None:
    store.add_items(ItemKind.SCAN, [("10", 10), ("11", 11)])
    store.record_intent(ItemKind.SCAN, "10", "create", request_uid="u-1", attempt=True, data={"a": 1})
    rec = store.get(ItemKind.SCAN, "10")
    assert rec is not None
    assert (rec.status, rec.step, rec.request_uid, rec.attempts, rec.data) == (
        Status.RUNNING,
        "create",
        "u-1",
        1,
        {"a": 1},
    )
    store.mark_failed(ItemKind.SCAN, "10", "create", ValueError("boom\nsecond line"), attempt=True)
    rec = store.get(ItemKind.SCAN, "10")
    assert rec is not None and rec.status is Status.FAILED and rec.attempts == 2
    assert (rec.error_class, rec.error_message) == ("ValueError", "boom")
    store.record_intent(ItemKind.SCAN, "10", "create")  # a retry: the error stays until done
    rec = store.get(ItemKind.SCAN, "10")
    assert rec is not None and rec.status is Status.RUNNING and rec.error_class == "ValueError"
    assert rec.request_uid == "u-1" and rec.attempts == 2
    store.mark_done(ItemKind.SCAN, "10", "analysis", target_id=99, data={"b": 2})
    rec = store.get(ItemKind.SCAN, "10")
    assert rec is not None
    assert (rec.status, rec.step, rec.target_id, rec.error_class, rec.error_message, rec.data) == (
        Status.DONE,
        "analysis",
        99,
        None,
        None,
        {"a": 1, "b": 2},
    )
    store.mark_failed(ItemKind.SCAN, "11", "upload", KeyError())
    rec = store.get(ItemKind.SCAN, "11")
    assert rec is not None and rec.error_message == "KeyError" and rec.attempts == 0


def test_ensure_creates_an_unknown_item_in_the_same_transaction(store: StateStore) -> None:
    store.add_items(ItemKind.FILE, [("1", 1)])
    with pytest.raises(KeyError, match="no file item '2'"):
        store.record_intent(ItemKind.FILE, "2", "upload")
    store.record_intent(ItemKind.FILE, "2", "upload", data={"sha256": "ab"}, ensure=2)
    store.mark_done(ItemKind.FILE, "3", "upload", target_id=30, ensure=3)
    store.mark_failed(ItemKind.FILE, "4", "upload", OSError("disk"), attempt=True, ensure=4)
    assert [(r.key, r.seq, r.source_id, r.status) for r in store.items(ItemKind.FILE)] == [
        ("1", 1, 1, Status.PENDING),
        ("2", 2, 2, Status.RUNNING),
        ("3", 3, 3, Status.DONE),
        ("4", 4, 4, Status.FAILED),
    ]


def test_a_transition_that_fails_inside_its_transaction_leaves_nothing(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failpoint `mid_state_write` is inside the transaction: a kill there loses all of it."""
    hits: list[str] = []

    def crash(name: str) -> None:
        hits.append(name)
        raise RuntimeError("killed")

    monkeypatch.setattr(failpoints, "hit", crash)
    for transition in (
        lambda: store.record_intent(ItemKind.IMAGE, "1:5", "download", ensure=1),
        lambda: store.mark_done(ItemKind.IMAGE, "1:5", "download", ensure=1),
        lambda: store.mark_failed(ItemKind.IMAGE, "1:5", "download", OSError("x"), ensure=1),
    ):
        with pytest.raises(RuntimeError, match="killed"):
            transition()
    assert hits == ["mid_state_write"] * 3
    assert store.items(ItemKind.IMAGE) == []


def test_transitions_take_kinds_and_statuses_as_strings_too(store: StateStore) -> None:
    store.add_items("image", [("1:5", 1)])
    store.record_intent("image", "1:5", "download", attempt=True)  # type: ignore[arg-type]
    store.mark_done("image", "1:5", "download", target_id=5, data={"path": "p"})  # type: ignore[arg-type]
    store.mark_failed("image", "1:6", "download", OSError("gone"), ensure=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        store.items("image", status="finished")
    done = store.items("image", status="done")
    assert [(r.key, r.kind, r.status, r.target_id) for r in done] == [("1:5", "image", "done", 5)]
    assert [r.key for r in store.items(ItemKind.IMAGE, status=[Status.FAILED, "done"])] == ["1:5", "1:6"]


def test_records_are_typed_and_still_compare_as_text(store: StateStore) -> None:
    store.add_items(ItemKind.SCAN, [("10", 10)])
    rec = store.get("scan", "10")
    assert isinstance(rec, ItemRecord)
    assert type(rec.kind) is ItemKind and type(rec.status) is Status
    assert rec.kind == "scan" and rec.status == "pending" and rec.status in ("pending", "running")
    assert f"{rec.kind} {rec.status}" == "scan pending" and str(rec.status) == "pending"
    assert json.dumps({rec.status: rec.kind}) == '{"pending": "scan"}'
    assert {Status.DONE: 1}.get("done") == 1 and {"done": 1}[Status.DONE] == 1


def test_counts(store: StateStore) -> None:
    assert store.counts() == StateCounts() and store.counts().as_dict() == {}
    store.add_items(ItemKind.SCAN, [("10", 10), ("11", 11), ("12", 12)])
    store.add_items(ItemKind.FILE, [("1", 1)])
    store.mark_done(ItemKind.SCAN, "10", "analysis", target_id=1)
    store.mark_failed(ItemKind.SCAN, "11", "upload", OSError("x"))
    store.record_intent(ItemKind.SCAN, "12", "upload")
    store.mark_done(ItemKind.FILE, "1", "upload")
    counts = store.counts()
    assert counts.kinds == (ItemKind.FILE, ItemKind.SCAN)
    assert counts.by_status(ItemKind.SCAN) == {Status.DONE: 1, Status.FAILED: 1, Status.RUNNING: 1}
    assert counts.by_status(ItemKind.IMAGE) == {} and counts.total(ItemKind.IMAGE) == 0
    assert counts.steps(ItemKind.SCAN) == {"analysis/done": 1, "upload/failed": 1, "upload/running": 1}
    assert counts.total(ItemKind.SCAN) == 3 and counts.total(ItemKind.FILE) == 1
    assert StepCount(ItemKind.FILE, "upload", Status.DONE, 1) in counts.rows
    assert counts.by_status(ItemKind.SCAN) == {Status.DONE: 1, Status.FAILED: 1, Status.RUNNING: 1}
    # the shape `status --json` printed before counts were typed
    assert json.dumps(counts.as_dict()) == json.dumps(
        {
            "file": {"done": 1},
            "file:steps": {"upload/done": 1},
            "scan": {"done": 1, "failed": 1, "running": 1},
            "scan:steps": {"analysis/done": 1, "upload/failed": 1, "upload/running": 1},
        }
    )


def test_migrations_are_numbered_up_to_the_format_version() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(2, FORMAT_VERSION + 1))
    assert all(m.statements and m.summary for m in MIGRATIONS)

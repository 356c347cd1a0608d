"""Pure pieces of copy and analyze: the plan, the payload rules, the failure window, id lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanjobs.errors import JobError, PlatformError
from scanjobs.modes.analyze.run import read_pairs_csv
from scanjobs.modes.copy.adoption import adopt_uploads, match_uploads, unsettled_uploads
from scanjobs.modes.copy.payload import Untranslatable, build_payload, hint_ids, translate_hints
from scanjobs.modes.copy.plan import plan_copy, request_uid, scans_in_flight_needed
from scanjobs.modes.outcome import FailureWindow
from scanjobs.modes.resources import read_id_column
from scanjobs.platform.db import MappingNames, ResolvedIds
from scanjobs.state import ItemKind, ItemRecord, StateStore

RAW = {
    "_raw_data": {
        "store": 3,
        "files": [1, 2],
        "input_type": "image",
        "captured_at": 1700000000,
        "category_id": 7,
        "section_id": 11,
        "store_planogram": 21,
        "aisle": "A3",
        "replace_id": 99,
        "id": 5,
        "created_at": "x",
        "updated_at": "y",
        "task_id": "t",
    }
}


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


def test_request_uid_is_stable_and_scoped() -> None:
    a = request_uid("epoch1", "fp", "https://albt", 5)
    assert a == request_uid("epoch1", "fp", "https://albt", 5)
    assert a != request_uid("epoch2", "fp", "https://albt", 5)  # --restart: a new state epoch
    assert a != request_uid("epoch1", "fp", "https://albt", 6)


def test_auto_payload_drops_hints_and_server_fields() -> None:
    payload = build_payload(RAW, store=8, files=[101, 102], strategy="auto", captured_at=1800000000)
    assert payload == {"store": 8, "files": [101, 102], "input_type": "image", "captured_at": 1800000000}


def test_mapped_payload_keeps_translated_hints_and_source_time() -> None:
    payload = build_payload(
        RAW,
        store=8,
        files=[101, 102],
        strategy="mapped",
        captured_at=None,
        translated={"store_planogram": 321, "section_id": 411, "category_id": 517},
    )
    assert (
        payload["store_planogram"] == 321 and payload["section_id"] == 411 and payload["category_id"] == 517
    )
    assert payload["aisle"] == "A3" and "replace_id" not in payload
    assert payload["captured_at"] == 1700000000
    assert not {"id", "created_at", "updated_at", "task_id"} & set(payload)


def test_payload_falls_back_to_provided_values() -> None:
    payload = build_payload(
        {"store": 3, "files": [1], "note": "x"}, store=8, files=[5], strategy="auto", captured_at=1
    )
    assert payload == {"store": 8, "files": [5], "note": "x", "captured_at": 1}


def test_translate_hints_by_name() -> None:
    names = MappingNames(
        store_planograms={21: "POG A"}, sections={11: ("POG A", "Top")}, categories={7: "Chips"}
    )
    resolved = ResolvedIds(
        store_planograms={"POG A": 321}, sections={("POG A", "Top"): 411}, categories={"Chips": 517}
    )
    hints = hint_ids(RAW)
    assert translate_hints(hints, names, resolved) == {
        "store_planogram": 321,
        "section_id": 411,
        "category_id": 517,
    }
    missing = ResolvedIds(store_planograms={"POG A": 321}, sections={}, categories={"Chips": 517})
    with pytest.raises(Untranslatable, match="no section 'Top' of planogram 'POG A' on the target"):
        translate_hints(hints, names, missing)


def test_failure_window() -> None:
    window = FailureWindow(4, 0.5)
    for failed in (True, True, True):
        window.record(failed)
    assert not window.exceeded()  # the window is not full yet
    window.record(False)
    assert window.exceeded()  # 3 of 4 > 0.5
    window.record(False)
    assert not window.exceeded()  # 2 of 4 is not more than half
    assert not FailureWindow(1, 1.0).exceeded()


def test_read_id_column(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("store,Scan_ID\n8,12\n8,13\n8,12\n")
    assert read_id_column(path) == [12, 13]
    path.write_text("12\n13\n")
    assert read_id_column(path) == [12, 13]
    path.write_text("scan_id\n12\nabc\n")
    with pytest.raises(JobError, match="line 3"):
        read_id_column(path)
    path.write_text("")
    with pytest.raises(JobError, match="empty"):
        read_id_column(path)


def test_read_pairs_csv(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("Source_Scan_ID,Target_Scan_ID\n1,10\n2,\n")
    assert read_pairs_csv(path) == [(1, 10), (2, None)]
    path.write_text("a,b\n1,2\n")
    with pytest.raises(JobError, match="Source_Scan_ID"):
        read_pairs_csv(path)


def upload_record(
    key: str,
    status: str,
    sha: str | None,
    name: str = "a.jpg",
    *,
    error: str | None = None,
    step: str = "upload",
    target: int | None = None,
) -> ItemRecord:
    data = {"sha256": sha, "name": name, "upload_started": 1_700_000_000.0} if sha else {}
    return ItemRecord("file", key, 1, step, status, int(key), target, None, 1, error, None, data, 0.0)


def test_unsettled_uploads_are_intents_and_ambiguous_failures() -> None:
    records = [
        upload_record("1", "running", "aa"),  # killed after sending
        upload_record("2", "failed", "bb", error="TransientError"),  # read timeout: may exist
        upload_record("3", "failed", "cc", error="PermanentError"),  # refused: made nothing
        upload_record("4", "done", "dd", target=40),
        upload_record("5", "failed", "ee", step="download", error="TransientError"),
        upload_record("6", "running", None),
    ]
    assert [r.key for r in unsettled_uploads(records)] == ["1", "2"]


def test_match_uploads_adopts_each_found_file_once_by_bytes_and_name() -> None:
    unsettled = [
        upload_record("1", "running", "aa"),
        upload_record("2", "running", "aa"),
        upload_record("3", "running", "bb", "b.jpg"),
        upload_record("4", "running", "cc"),
    ]
    found = [(12, "aa", "a.jpg"), (11, "aa", "a.jpg"), (13, "bb", "other.jpg"), (14, "cc", "a.jpg")]
    # 14 is already the recorded upload of another file (not yet in a scan): never adopted twice
    assert match_uploads(unsettled, found, taken={14}) == {"1": 11, "2": 12}


class FakeTargetDB:
    """The one query adopt_uploads makes, answered from a list (or refused)."""

    def __init__(self, found: list[tuple[int, str, str]] | None) -> None:
        self.found = found
        self.asked: list[tuple[int, list[str]]] = []

    def unclaimed_uploads(
        self, store: int, checksums: list[str], since: object
    ) -> list[tuple[int, str, str]]:
        self.asked.append((store, checksums))
        if self.found is None:
            raise PlatformError("query unclaimed_uploads failed: column f.checksum does not exist")
        return self.found


class Collect:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, object]]] = []

    def emit(self, event: str, **fields: object) -> None:
        self.events.append((event, fields))


@pytest.mark.parametrize("searchable", [True, False])
def test_adopt_uploads_records_found_files_or_says_it_cannot(tmp_path: Path, searchable: bool) -> None:
    state = StateStore.open(tmp_path / "s.sqlite", fingerprint="f")
    state.add_items("file", [("1", 1), ("2", 2)])
    state.record_intent(
        ItemKind.FILE,
        "1",
        "upload",
        data={"sha256": "aa", "name": "a.jpg", "upload_started": 1_700_000_000.0},
    )
    db, events = FakeTargetDB([(77, "aa", "a.jpg")] if searchable else None), Collect()
    assert adopt_uploads(state, db, 9, {1, 2}, events) == (1 if searchable else 0)  # type: ignore[arg-type]
    assert db.asked == [(9, ["aa"])]
    record = state.get("file", "1")
    assert record is not None
    if searchable:
        assert (record.status, record.target_id, record.data["adopted"]) == ("done", 77, True)
        assert events.events[0][0] == "info"
    else:
        assert (record.status, record.target_id) == ("running", None)
        assert events.events[0][0] == "warning" and "uploaded again" in str(events.events[0][1]["message"])
    state.close()


def test_scans_in_flight_needed_follows_the_slowest_stage() -> None:
    from scanjobs.jobfile.model import Workers

    legacy = Workers(download=20, upload=20, create=10)
    assert scans_in_flight_needed(legacy, 3) == 14  # downloads: 20 / 6 scans a round trip, x 4
    assert scans_in_flight_needed(legacy, 1) == 40  # downloads: 10 a round trip; create: 10
    assert scans_in_flight_needed(Workers(download=20, upload=20, create=2), 1) == 8  # creates
    assert scans_in_flight_needed(legacy, 0) == 40  # no files counted: as for one

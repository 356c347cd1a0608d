"""Upload adoption: which uploads are unsettled, which found files match them, and recording them."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanjobs.errors import PlatformError
from scanjobs.modes.copy.adoption import adopt_uploads, match_uploads, unsettled_uploads
from scanjobs.state import ItemKind, ItemRecord, StateStore


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

"""Upload adoption: which uploads are unsettled, which found files match them, and recording them."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scanjobs.errors import PlatformError
from scanjobs.modes.copy.adoption import adopt_uploads, intent_checksum, match_uploads, unsettled_uploads
from scanjobs.platform.db import FoundUpload
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
    algorithm: str = "md5",
) -> ItemRecord:
    data = {algorithm: sha, "name": name, "upload_started": SENT} if sha else {}
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


SENT = 1_700_000_000.0  # every upload_record's intent time


def found(file_id: int, sha: str, name: str = "a.jpg", after: float = 0.1) -> FoundUpload:
    return FoundUpload(file_id, sha, name, SENT + after)


def match(
    unsettled: list[ItemRecord],
    files: list[FoundUpload],
    taken: set[int] = frozenset(),  # type: ignore[assignment]
) -> tuple[dict[str, int], list[str]]:
    return match_uploads(unsettled, files, set(taken), offset=0.0, window=lambda _size: 15.0)


def test_match_uploads_adopts_the_one_candidate_of_bytes_name_and_time() -> None:
    unsettled = [
        upload_record("1", "running", "aa"),
        upload_record("3", "running", "bb", "b.jpg"),
        upload_record("4", "running", "cc"),
        upload_record("5", "running", "dd"),
    ]
    files = [
        found(11, "aa"),
        found(13, "bb", "other.jpg"),  # other name: not ours
        found(14, "cc"),  # already the recorded upload of another file: never adopted twice
        found(15, "dd", after=-1.0),  # created before the intent: another's, not this one's
    ]
    assert match(unsettled, files, taken={14}) == ({"1": 11}, [])


def test_match_uploads_is_in_doubt_when_a_window_holds_two_candidates() -> None:
    """Issue 12, point 4: another job sent the same bytes and name at about the same time."""
    mine = upload_record("1", "running", "aa")
    assert match([mine], [found(11, "aa"), found(12, "aa", after=3.0)]) == ({}, ["1"])
    # the other job's file, sent well outside this attempt's window: ours is the one candidate
    assert match([mine], [found(11, "aa"), found(12, "aa", after=60.0)]) == ({"1": 11}, [])


def test_match_uploads_is_in_doubt_when_two_intents_share_their_one_candidate() -> None:
    """Two source files of ours with the same bytes and name: one file found fits both."""
    both = [upload_record("1", "running", "aa"), upload_record("2", "running", "aa")]
    assert match(both, [found(11, "aa")]) == ({}, ["1", "2"])


@given(
    st.lists(st.floats(-100, 100), max_size=6),
    st.floats(-3600, 3600),
)
def test_match_uploads_never_adopts_one_file_twice_nor_outside_the_window(
    created: list[float], offset: float
) -> None:
    unsettled = [upload_record(str(k), "running", "aa") for k in range(1, 4)]
    files = [FoundUpload(100 + i, "aa", "a.jpg", SENT + offset + c) for i, c in enumerate(created)]
    adopted, doubt = match_uploads(unsettled, files, set(), offset=offset, window=lambda _size: 15.0)
    assert len(set(adopted.values())) == len(adopted)
    assert not set(adopted) & set(doubt)
    for file_id in adopted.values():  # within the window (up to float rounding at epoch scale)
        assert -0.501 <= created[file_id - 100] <= 17.001


class FakeTargetDB:
    """The queries adopt_uploads makes, answered from a list (or refused)."""

    def __init__(self, found: list[FoundUpload] | None) -> None:
        self.found = found
        self.asked: list[tuple[int, list[str]]] = []

    def clock_offset(self) -> tuple[float, float]:
        return 0.0, 0.01

    def unclaimed_uploads(self, store: int, checksums: list[str], since: object) -> list[FoundUpload]:
        self.asked.append((store, checksums))
        if self.found is None:
            raise PlatformError("query unclaimed_uploads failed: column f.checksum does not exist")
        return self.found


class Collect:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, object]]] = []

    def emit(self, event: str, **fields: object) -> None:
        self.events.append((event, fields))


def test_an_intent_of_an_earlier_version_names_its_sha256_and_a_new_one_its_md5() -> None:
    """Issue 13, point 1: the checksum is MD5 now; a state of an earlier scanjobs recorded SHA-256
    (what it sent, and what the platform then stored), and must still resume."""
    old = upload_record("1", "running", "5ha", algorithm="sha256")
    new = upload_record("2", "running", "3d5")
    assert [r.key for r in unsettled_uploads([old, new])] == ["1", "2"]
    assert (intent_checksum(old), intent_checksum(new)) == ("5ha", "3d5")
    assert match([old, new], [found(11, "5ha"), found(12, "3d5")]) == ({"1": 11, "2": 12}, [])


def test_a_new_intent_replaces_the_checksum_an_earlier_version_recorded(tmp_path: Path) -> None:
    """Issue 13, point 1: an attempt of this version after one of an earlier version leaves one
    checksum in the intent, the MD5 it sent (the mover's merge patch drops the old `sha256`)."""
    state = StateStore.open(tmp_path / "s.sqlite", fingerprint="f")
    state.add_items("file", [("1", 1)])
    state.record_intent(ItemKind.FILE, "1", "upload", data={"sha256": "5ha", "name": "a.jpg"})
    state.record_intent(ItemKind.FILE, "1", "upload", data={"md5": "3d5", "sha256": None, "name": "a.jpg"})
    record = state.get("file", "1")
    assert record is not None and record.data == {"md5": "3d5", "name": "a.jpg"}
    assert intent_checksum(record) == "3d5"
    state.close()


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
@pytest.mark.parametrize("searchable", [True, False])
def test_adopt_uploads_records_found_files_or_says_it_cannot(
    tmp_path: Path, searchable: bool, algorithm: str
) -> None:
    state = StateStore.open(tmp_path / "s.sqlite", fingerprint="f")
    state.add_items("file", [("1", 1), ("2", 2)])
    state.record_intent(
        ItemKind.FILE,
        "1",
        "upload",
        data={algorithm: "aa", "name": "a.jpg", "upload_started": SENT},
    )
    db, events = FakeTargetDB([found(77, "aa")] if searchable else None), Collect()
    assert adopt_uploads(state, db, 9, {1, 2}, lambda _size: 15.0, events) == (1 if searchable else 0)  # type: ignore[arg-type]
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

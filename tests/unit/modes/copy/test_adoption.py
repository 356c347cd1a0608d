"""Adoption: which uploads and creates are unsettled, what found on the target matches them, recording it."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scanjobs.errors import PlatformError
from scanjobs.modes.copy.adoption import (
    adopt_creates,
    adopt_uploads,
    intent_checksum,
    match_creates,
    match_uploads,
    unsettled_creates,
    unsettled_uploads,
)
from scanjobs.platform.db import FoundScan, FoundUpload, ScanFileRef, SourceScan
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


# -- creates (issue 13, point 5) ----------------------------------------------------------------


def source_scan(scan_id: int, *file_ids: int) -> SourceScan:
    refs = tuple(ScanFileRef(f, "image") for f in file_ids)
    return SourceScan(scan_id, 1, datetime(2025, 1, 1, tzinfo=timezone.utc), "done", {}, refs)


def scan_record(
    key: str, status: str, uid: str | None, *, target: int | None = None, files: list[int] | None = None
) -> ItemRecord:
    data = {} if files is None else {"target_files": files}
    return ItemRecord("scan", key, 1, "create", status, int(key), target, uid, 1, None, None, data, 0.0)


def test_unsettled_creates_are_uids_without_a_target_with_the_files_they_sent() -> None:
    """Issue 13, point 5: a create a crash left unsettled, and the target files it sent: recorded
    with its intent, or (an intent of an earlier version) the state's uploads of its files."""
    scans = [source_scan(i, 10 * i, 10 * i + 1) for i in range(1, 7)]
    records = {
        "1": scan_record("1", "running", "u1", files=[501, 502]),
        "2": scan_record("2", "running", "u2"),  # an earlier version's intent: files derived
        "3": scan_record("3", "failed", "u3", files=[503, 504]),  # e.g. retries ran out
        "4": scan_record("4", "done", "u4", target=9, files=[505]),
        "5": scan_record("5", "running", None),  # never reached its create
        "6": scan_record("6", "running", "u6"),  # files not all uploaded: cannot have been sent
    }
    uploaded = {20: 520, 21: 521, 60: 560}
    assert unsettled_creates(scans, records, uploaded) == {
        "1": [501, 502],
        "2": [520, 521],
        "3": [503, 504],
    }


def test_match_creates_adopts_the_scan_made_of_exactly_its_files() -> None:
    """Issue 13, point 5: the platform forgot the uid; the scan that create made is found by the
    files this copy uploaded for it (they belong to this copy alone)."""
    unsettled = {"1": [11, 12], "2": [21, 22], "3": [31], "4": [41, 42]}
    found = [
        FoundScan(100, (12, 11)),  # its files, another order
        FoundScan(101, (21, 22, 99)),  # a file more: not the scan "2" sent
        FoundScan(102, (21,)),  # a file less
        FoundScan(103, (31,)),  # already another scan's recorded target
        FoundScan(104, (41, 42)),
        FoundScan(105, (41, 42)),  # sent twice to a platform that forgot: the first is used
    ]
    adopted, doubt, duplicates = match_creates(unsettled, found, taken={103})
    assert adopted == {"1": 100, "4": 104}
    assert doubt == [] and duplicates == {"4": [105]}


def test_match_creates_is_in_doubt_when_two_creates_sent_the_same_files() -> None:
    """Two source scans of this copy made of the same files: a scan found fits both."""
    both = {"1": [11, 12], "2": [12, 11]}
    assert match_creates(both, [FoundScan(100, (11, 12))], set()) == ({}, ["1", "2"], {})
    assert match_creates(both, [], set()) == ({}, [], {})


class FakeScansDB:
    def __init__(self, found: list[FoundScan] | None) -> None:
        self.found = found
        self.asked: list[tuple[int, list[int]]] = []

    def scans_using_files(self, store: int, file_ids: list[int]) -> list[FoundScan]:
        self.asked.append((store, file_ids))
        if self.found is None:
            raise PlatformError("query scans_using_files failed: the database went away")
        return self.found


@pytest.mark.parametrize("searchable", [True, False])
def test_adopt_creates_records_the_found_scan_or_says_it_cannot(tmp_path: Path, searchable: bool) -> None:
    state = StateStore.open(tmp_path / "s.sqlite", fingerprint="f")
    state.add_items("scan", [("1", 1), ("2", 2)])
    state.record_intent(ItemKind.SCAN, "1", "create", request_uid="u1", data={"target_files": [501, 502]})
    db, events = FakeScansDB([FoundScan(900, (501, 502))] if searchable else None), Collect()
    scans = [source_scan(1, 10, 11), source_scan(2, 20)]
    records = {r.key: r for r in state.items(ItemKind.SCAN)}
    assert adopt_creates(state, db, 9, scans, records, events) == ({1} if searchable else set())  # type: ignore[arg-type]
    assert db.asked == [(9, [501, 502])]
    record = state.get("scan", "1")
    assert record is not None
    if searchable:
        assert (record.status, record.target_id, record.data["adopted"]) == ("done", 900, True)
        assert events.events[0][0] == "info"
    else:
        assert (record.status, record.target_id, record.request_uid) == ("running", None, "u1")
        assert events.events[0][0] == "warning" and "request uid" in str(events.events[0][1]["message"])
    state.close()


@given(
    st.dictionaries(st.sampled_from("123456"), st.lists(st.integers(1, 4), max_size=3), max_size=6),
    st.lists(st.lists(st.integers(1, 4), max_size=3), max_size=8),
    st.sets(st.integers(100, 107)),
)
def test_match_creates_never_adopts_a_scan_twice_nor_one_of_other_files(
    unsettled: dict[str, list[int]], made: list[list[int]], taken: set[int]
) -> None:
    found = [FoundScan(100 + i, tuple(files)) for i, files in enumerate(made)]
    adopted, doubt, duplicates = match_creates(unsettled, found, taken)
    assert len(set(adopted.values())) == len(adopted)
    assert not set(adopted) & set(doubt) and set(duplicates) <= set(adopted)
    for key, scan_id in adopted.items():
        assert scan_id not in taken and sorted(made[scan_id - 100]) == sorted(unsettled[key])
        assert all(scan_id < other for other in duplicates.get(key, []))

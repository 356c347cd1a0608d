"""PlatformDB against the sandbox's real PostgreSQL: selection, files, mapping, analysis rows."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pandas as pd
import psycopg
import pytest

from scanjobs.errors import AuthError, UnreachableError
from scanjobs.platform.db import SCAN_DETAIL_COLUMNS, PlatformDB

pytestmark = pytest.mark.integration

MISSING = 987654321


def _db(inst: dict[str, Any], **overrides: Any) -> PlatformDB:
    db = {**inst["db"], **overrides}
    return PlatformDB(db["host"], db["port"], db["dbname"], db["user"], db["password"])


def _raw(inst: dict[str, Any], sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    """An independent direct query, to check PlatformDB against."""
    db = inst["db"]
    with psycopg.connect(
        host=db["host"], port=db["port"], dbname=db["dbname"], user=db["user"],
        password=db["password"],
    ) as conn:  # fmt: skip
        return conn.execute(sql, params).fetchall()


@pytest.fixture
def src_info(sandbox: Any) -> dict[str, Any]:
    return dict(sandbox.info["instances"]["source"])


@pytest.fixture
def source_db(src_info: dict[str, Any]) -> Iterator[PlatformDB]:
    with _db(src_info) as db:
        yield db


@pytest.fixture
def target_db(sandbox: Any) -> Iterator[PlatformDB]:
    with _db(sandbox.info["instances"]["target"]) as db:
        yield db


def test_select_by_ids_keeps_order_and_reports_missing(sandbox: Any, source_db: PlatformDB) -> None:
    ids = list(reversed(sandbox.info["source_scan_ids"]))
    assert source_db.select_scan_ids(ids=[*ids, MISSING]) == ids
    assert source_db.missing_scan_ids([ids[0], MISSING]) == [MISSING]
    assert source_db.select_scan_ids(ids=[]) == []


def test_select_by_store_and_inclusive_dates(sandbox: Any, source_db: PlatformDB) -> None:
    scan = source_db.scans_with_files(sandbox.info["source_scan_ids"][:1])[0]
    day = scan.created_at.date()
    found = source_db.select_scan_ids(stores=[scan.store_id], date_from=day, date_to=day,
                                      status=scan.status)  # fmt: skip
    assert scan.id in found and found == sorted(found)
    before = source_db.select_scan_ids(stores=[scan.store_id], date_to=day - timedelta(days=1))
    assert scan.id not in before
    assert scan.id not in source_db.select_scan_ids(stores=[scan.store_id], status="no-such")


def test_select_from_several_stores_and_their_dates(sandbox: Any, source_db: PlatformDB) -> None:
    """issue 15, point 4: several stores in one query; each store's scans and dates for the
    warning of a query that selects nothing."""
    scans = source_db.scans_with_files(sandbox.info["source_scan_ids"])
    stores = sorted({s.store_id for s in scans})
    assert len(stores) >= 2
    every = source_db.select_scan_ids(stores=stores)
    assert every == sorted(every)
    assert set(every) == {i for store in stores for i in source_db.select_scan_ids(stores=[store])}
    assert {s.id for s in scans if s.status == "done"} <= set(every)
    unknown = max(stores) + 1000
    found = {s.store_id: s for s in source_db.store_scan_dates([*stores, unknown])}
    assert set(found) == set(stores)  # a store without scans gives no row
    for store in stores:
        own = [s for s in scans if s.store_id == store and s.status == "done"]
        if own:
            assert found[store].first_created <= min(s.created_at.date() for s in own)
            assert found[store].last_created >= max(s.created_at.date() for s in own)
        assert found[store].with_status == len(source_db.select_scan_ids(stores=[store]))
    none = source_db.store_scan_dates(stores, status="no-such")
    assert all(s.with_status == 0 and s.scans > 0 for s in none)


def test_scans_with_files_in_source_order(
    sandbox: Any, src_info: dict[str, Any], source_db: PlatformDB
) -> None:
    ids = sandbox.info["source_scan_ids"]
    scans = source_db.scans_with_files(ids)
    assert [s.id for s in scans] == ids
    expected: dict[int, list[int]] = {}
    for scan_id, file_id in _raw(
        src_info,
        "SELECT scan_id, file_id FROM realograms_implementation_scanfile WHERE scan_id = ANY(%s) ORDER BY id",
        (ids,),
    ):
        expected.setdefault(scan_id, []).append(file_id)
    for scan in scans:
        assert [f.file_id for f in scan.files] == expected[scan.id]
        assert all(f.file_type for f in scan.files)
        assert isinstance(scan.provided_values, dict)
    empty = source_db.scans_with_files(sandbox.info["empty_scan_ids"])
    assert empty and all(s.files == () for s in empty)
    a, b = source_db.scans_with_files(sandbox.info["shared_file_scan_ids"])
    assert {f.file_id for f in a.files} & {f.file_id for f in b.files}


def test_store_exists(sandbox: Any, target_db: PlatformDB) -> None:
    assert target_db.store_exists(sandbox.info["target_store_id"])
    assert not target_db.store_exists(MISSING)


def test_mapping_names_resolve_on_the_target(
    sandbox: Any, source_db: PlatformDB, target_db: PlatformDB
) -> None:
    pogs, sections, cats = set(), set(), set()
    for scan in source_db.scans_with_files(sandbox.info["source_scan_ids"]):
        raw = scan.provided_values.get("_raw_data", scan.provided_values)
        if raw.get("store_planogram") is not None:
            pogs.add(int(raw["store_planogram"]))
        if raw.get("section_id") is not None:
            sections.add(int(raw["section_id"]))
        if raw.get("category_id") is not None:
            cats.add(int(raw["category_id"]))
    assert pogs, "the seeded source scans should carry mapping hints"
    names = source_db.mapping_names(
        store_planogram_ids=[*pogs, MISSING], section_ids=sections, category_ids=cats
    )
    assert set(names.store_planograms) == pogs  # the missing id is simply absent
    store = sandbox.info["target_store_id"]
    resolved = target_db.resolve_names(
        store,
        planogram_names=names.store_planograms.values(),
        sections=names.sections.values(),
        category_names=names.categories.values(),
    )
    assert resolved.store_planograms, "the target store should have same-named POGs"
    # Round trip: each resolved target id carries the very name it was resolved from.
    back = target_db.mapping_names(
        store_planogram_ids=resolved.store_planograms.values(),
        section_ids=resolved.sections.values(),
        category_ids=resolved.categories.values(),
    )
    assert {back.store_planograms[i]: i for i in resolved.store_planograms.values()} == (
        resolved.store_planograms
    )
    assert {back.sections[i]: i for i in resolved.sections.values()} == resolved.sections
    assert {back.categories[i]: i for i in resolved.categories.values()} == resolved.categories
    store_pogs = {
        r[0] for r in _raw(
            sandbox.info["instances"]["target"],
            "SELECT id FROM planograms_implementation_planogramstore WHERE store_id = %s",
            (store,),
        )
    }  # fmt: skip
    assert set(resolved.store_planograms.values()) <= store_pogs
    assert target_db.resolve_names(store, planogram_names=["no such POG"]).store_planograms == {}


def test_processing_status_of_seeded_scans(sandbox: Any, source_db: PlatformDB) -> None:
    ids = sandbox.info["source_scan_ids"]
    status = source_db.processing_status([*ids, MISSING])
    assert set(status) == set(ids)
    assert all(s.processed for s in status.values())
    assert source_db.processing_status([]) == {}


def test_scan_details_one_row_per_report_and_nulls_kept(
    sandbox: Any, src_info: dict[str, Any], source_db: PlatformDB
) -> None:
    ids = [*sandbox.info["source_scan_ids"], *sandbox.info["empty_scan_ids"]]
    frame = source_db.scan_details(ids)
    assert tuple(frame.columns) == SCAN_DETAIL_COLUMNS
    reports = dict(_raw(
        src_info,
        "SELECT s.id, count(r.id) FROM realograms_implementation_scan s"
        " LEFT JOIN planograms_compliance_planogramcompliancereport r"
        " ON r.realogram_id = s.active_realogram_id AND r.is_last_active"  # issue 13, point 11
        " WHERE s.id = ANY(%s) GROUP BY s.id",
        (ids,),
    ))  # fmt: skip
    bays = dict(_raw(
        src_info,
        "SELECT s.id, count(b.id) FROM realograms_implementation_scan s"
        " JOIN realograms_implementation_realogrambay b ON b.realogram_id = s.active_realogram_id"
        " WHERE s.id = ANY(%s) GROUP BY s.id",
        (ids,),
    ))  # fmt: skip
    per_scan = frame.groupby("scan_id").size().to_dict()
    assert per_scan == {i: max(1, reports[i]) for i in ids}
    for scan_id, n in bays.items():
        assert set(frame.loc[frame.scan_id == scan_id, "bays"]) == {n}
    assert list(frame["scan_id"]) == sorted(frame["scan_id"])
    with_reports = frame[frame.report_id.notna()]
    assert len(with_reports) and with_reports.planogram_name.notna().all()
    assert with_reports.is_additional_section[with_reports.section_id.notna()].notna().all()
    no_report = frame[frame.report_id.isna()]
    for col in ("pre_pog_pct", "ok", "oos", "section_name", "map_by", "is_additional_section"):
        assert no_report[col].isna().all()  # never 0 or "" for a missing value
    assert str(frame["pre_pog_pct"].dtype) == "Float64"
    assert str(frame["is_additional_section"].dtype) == "boolean"
    assert source_db.scan_details([]).empty


def test_download_info(sandbox: Any, source_db: PlatformDB) -> None:
    ids = sandbox.info["source_scan_ids"]
    info = source_db.download_info(ids)
    scans = {s.id: s for s in source_db.scans_with_files(ids)}
    frame = source_db.scan_details(ids)
    for scan_id, item in info.items():
        assert item.files == scans[scan_id].files
        raw = scans[scan_id].provided_values.get("_raw_data", {})
        pog = raw.get("store_planogram", raw.get("store_planogram_id"))
        assert item.store_pog_id == (None if pog is None else str(pog))
        rows = frame[(frame.scan_id == scan_id) & frame.report_id.notna()]
        first = None if rows.empty else rows.sort_values("report_id").section_name.iloc[0]
        assert item.section_name == first
    empty = source_db.download_info(sandbox.info["empty_scan_ids"])
    assert all(i.files == () for i in empty.values())


def test_concurrent_queries_share_one_connection(sandbox: Any, source_db: PlatformDB) -> None:
    ids = sandbox.info["source_scan_ids"]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: source_db.processing_status(ids), range(64)))
    assert all(r == results[0] for r in results)


def test_wrong_password_is_auth_error_without_the_password(src_info: dict[str, Any]) -> None:
    with pytest.raises(AuthError) as info:
        _db(src_info, password="wrong-db-pw-42").connect()
    assert "wrong-db-pw-42" not in str(info.value)


def test_unreachable_database(src_info: dict[str, Any]) -> None:
    with pytest.raises(UnreachableError, match=r"cannot connect to database .* at 127\.0\.0\.1:1"):
        _db(src_info, host="127.0.0.1", port=1).connect()


def test_scan_details_read_in_batches_are_the_details_read_at_once(
    sandbox: Any, source_db: PlatformDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large result is made Python objects BATCH_ROWS rows at a time (the details of 100k
    scans at once took 180 MB): batches of 3 rows give the same frame, dtypes included."""
    import scanjobs.platform.db as db_module

    ids = list(sandbox.info["source_scan_ids"])
    whole = source_db.scan_details(ids)
    assert len(whole) > 6
    monkeypatch.setattr(db_module, "BATCH_ROWS", 3)
    batched = source_db.scan_details(ids)
    pd.testing.assert_frame_equal(batched, whole)


def test_many_ids_are_sent_in_batches(
    sandbox: Any, source_db: PlatformDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ids of 100k pairs are sent BATCH_IDS at a time (at once, they and the answers took
    20 MB): batches of 2 ids give the missing ids in their order, and every scan's state."""
    import scanjobs.platform.db as db_module

    ids = list(reversed(sandbox.info["source_scan_ids"]))
    asked = [ids[0], MISSING, *ids, MISSING + 1, ids[1]]
    whole = source_db.missing_scan_ids(asked), source_db.processing_status(asked)
    monkeypatch.setattr(db_module, "BATCH_IDS", 2)
    assert (source_db.missing_scan_ids(asked), source_db.processing_status(asked)) == whole
    assert whole[0] == [MISSING, MISSING + 1]
    assert set(whole[1]) == set(ids)

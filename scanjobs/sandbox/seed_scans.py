"""Deterministic processed source scans: files, realograms, bays, reports and MA logs."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from scanjobs.sandbox.images import write_image
from scanjobs.sandbox.seed_master import (
    HISTORY_DAYS,
    InstanceMaster,
    MasterSpec,
    PlanogramSpec,
    SectionSpec,
    insert_master,
    rate,
)
from scanjobs.sandbox.tables import TABLES, Ids, ScanStatus

MAP_BY = ["barcode", "majority", "section_hint", "price_tag", "neighbour"]
RECALCULATED = 0.25  # the share of seeded scans recalculated once: an inactive older report first
# When a seeded scan's processing started and finished, after its creation.
PROCESSING_STARTED, PROCESSING_FINISHED = dt.timedelta(seconds=20), dt.timedelta(seconds=80)


@dataclass(frozen=True)
class SourceTruth:
    """How the source mapped a scan: what an accurate MA must reproduce on the other side."""

    scan_id: int
    planogram: str
    section: str
    pre_compliance: float | None


@dataclass
class SeedResult:
    """What the sandbox needs to know after seeding."""

    source_scan_ids: list[int] = field(default_factory=list)
    source_store_ids: list[int] = field(default_factory=list)
    target_store_id: int = 0
    empty_scan_ids: list[int] = field(default_factory=list)
    shared_file_scan_ids: list[int] = field(default_factory=list)
    by_checksum: dict[str, SourceTruth] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        """A JSON form, kept beside the databases so that a restart with their data needs no reseed."""
        return {**asdict(self), "by_checksum": {c: asdict(t) for c, t in self.by_checksum.items()}}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SeedResult:
        truth = {c: SourceTruth(**t) for c, t in record["by_checksum"].items()}
        return cls(**{**record, "by_checksum": truth})


def _report_values(rng: random.Random) -> tuple[Any, ...]:
    rates: dict[str, int | None] = {
        "osa": rng.randint(60, 100),
        "correct": rng.randint(5, 80),
        "wandering": rng.randint(0, 9),
        "missing": rng.randint(0, 15),
        "empty": rng.randint(0, 6),
    }
    if rng.random() < 0.08:
        rates[rng.choice(list(rates))] = None
    compliance = None if rng.random() < 0.04 else rate(rng)
    return compliance, rate(rng), rate(rng), rate(rng), Jsonb(rates)


def _filename(rng: random.Random, n: int, kind: str) -> str:
    if n % 7 == 3:
        return f"IMG_{n:04d}"  # no extension: the real type must come from the bytes
    if kind == "png":
        return f"IMG_{n:04d}.png"
    return f"IMG_{n:04d}.{rng.choice(['jpg', 'jpeg', 'JPG'])}"


def seed_source(
    cur: psycopg.Cursor[Any],
    spec: MasterSpec,
    rng: random.Random,
    storage: Path,
    scans: int,
    files_per_scan: int,
    file_bytes: int | None,
    seed: int,
    today: dt.date,
) -> tuple[SeedResult, InstanceMaster]:
    """Master data plus N processed scans with files, realograms, bays, reports, MA logs."""
    ids = Ids("source")
    m = insert_master(cur, spec, ids, rng, None, today)
    result = SeedResult(source_store_ids=list(m.stores.values()))
    file_counter = 0

    def new_file() -> int:
        nonlocal file_counter
        file_counter += 1
        fid = ids.take("file")
        kind = "png" if rng.random() < 0.4 else "jpg"
        name = _filename(rng, file_counter, kind)
        rel = f"uploads/{fid}/{name if '.' in name else name + '.' + kind}"
        size, checksum = write_image(storage / rel, kind, rng, f"sandbox seed {seed} file {fid}", file_bytes)
        ctype = "image/png" if kind == "png" else "image/jpeg"
        cur.execute(
            f"INSERT INTO {TABLES['file']} (id, file, original_filename, input_type, content_type,"
            " size, checksum) VALUES (%s, %s, %s, 'image', %s, %s, %s)",
            (fid, rel, name, ctype, size, checksum),
        )
        return fid

    def new_scan(file_ids: list[int], flat_values: bool = False) -> tuple[int, SourceTruth]:
        scan_id = ids.take("scan")
        store_name = rng.choice(spec.stores)
        pog = rng.choice(spec.planograms)
        section = rng.choice(pog.sections)
        store_id, pog_id = m.stores[store_name], m.planograms[pog.name]
        store_pog = m.store_pogs[(store_id, pog_id)]
        created = dt.datetime.combine(
            today - dt.timedelta(days=rng.randint(1, HISTORY_DAYS - 1)),
            dt.time(rng.randint(7, 20), rng.randint(0, 59), rng.randint(0, 59)),
            dt.timezone.utc,
        )
        payload = {
            "store": store_id,
            "files": file_ids,
            "input_type": "image",
            "captured_at": int(created.timestamp()) - rng.randint(30, 600),
            "category_id": m.categories[pog.category],
            "section_id": m.sections[(pog.name, section.name)],
            "store_planogram": store_pog,
            "aisle": f"A{rng.randint(1, 12)}",
            "replace_id": None,
            "id": scan_id,
            "created_at": created.isoformat(),
            "updated_at": created.isoformat(),
            "task_id": str(uuid.UUID(int=rng.getrandbits(128))),
        }
        realogram = ids.take("realogram")
        values = payload if flat_values else {"_raw_data": payload}
        cur.execute(
            f"INSERT INTO {TABLES['scan']} (id, store_id, created_at, updated_at, status,"
            " has_report, selected_category_id, active_realogram_id, provided_values,"
            " processing_start_time, processing_finish_time)"
            " VALUES (%s, %s, %s, %s, %s, true, %s, %s, %s, %s, %s)",
            (
                scan_id,
                store_id,
                created,
                created,
                ScanStatus.DONE,
                payload["category_id"],
                realogram,
                Jsonb(values),
                created + PROCESSING_STARTED,
                created + PROCESSING_FINISHED,
            ),
        )
        for fid in file_ids:
            cur.execute(
                f"INSERT INTO {TABLES['scanfile']} (id, scan_id, file_id, file_type)"
                " VALUES (%s, %s, %s, 'image')",
                (ids.take("scanfile"), scan_id, fid),
            )
        cur.execute(
            f"INSERT INTO {TABLES['realogram']} (id, scan_id, created_at) VALUES (%s, %s, %s)",
            (realogram, scan_id, created),
        )
        for bay in range(rng.randint(1, 3)):
            cur.execute(
                f"INSERT INTO {TABLES['bay']} (id, realogram_id, number) VALUES (%s, %s, %s)",
                (ids.take("bay"), realogram, bay + 1),
            )
        sections = [section]
        others = [s for s in pog.sections if s != section]
        if others and rng.random() < 0.35:
            sections.append(rng.choice(others))

        def report(source: random.Random, planogram: PlanogramSpec, sec: SectionSpec, active: bool) -> None:
            pog_of = m.planograms[planogram.name]
            cur.execute(
                f"INSERT INTO {TABLES['report']} (id, realogram_id, store_planogram_id,"
                " planogram_id, section_id, section_name, aisle_name, compliance_rate,"
                " facing_compliance_rate, sequence_compliance_rate, initial_pre_compliance,"
                " compliance_rates, scan_created_date, is_last_active)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    ids.take("report"),
                    realogram,
                    m.store_pogs[(store_id, pog_of)],
                    pog_of,
                    m.sections[(planogram.name, sec.name)],
                    sec.name,
                    payload["aisle"],
                    *_report_values(source),
                    created.date(),
                    active,
                ),
            )

        # Its own random source: every other value stays what this seed has always given.
        recalc = random.Random(f"recalculated {seed} {scan_id}")
        if recalc.random() < RECALCULATED:
            # The version before the recalculation mapped the scan elsewhere: a reader of every
            # version would show a section the platform no longer reports.
            older = [(p, s) for p in spec.planograms for s in p.sections if (p, s) != (pog, section)]
            report(recalc, *recalc.choice(older), active=False)
        for sec in sections:
            report(rng, pog, sec, active=True)
        cur.execute(
            f"INSERT INTO {TABLES['mlog']} (id, store_planogram_id, scan_created_date, data)"
            " VALUES (%s, %s, %s, %s)",
            (ids.take("mlog"), store_pog, created, Jsonb({str(scan_id): {"map_by": rng.choice(MAP_BY)}})),
        )
        row = cur.execute(
            f"SELECT pre_compliance FROM {TABLES['spc']} WHERE store_planogram_id = %s AND date = %s",
            (store_pog, created.date()),
        ).fetchone()
        pre = row[0] if row else None
        return scan_id, SourceTruth(scan_id, pog.name, section.name, pre)

    for _ in range(scans):
        file_ids = [new_file() for _ in range(files_per_scan)]
        scan_id, truth = new_scan(file_ids)
        result.source_scan_ids.append(scan_id)
        for fid in file_ids:
            checksum = cur.execute(f"SELECT checksum FROM {TABLES['file']} WHERE id = %s", (fid,)).fetchone()
            assert checksum is not None
            result.by_checksum.setdefault(checksum[0], truth)
    result.empty_scan_ids.append(new_scan([], flat_values=True)[0])
    shared = new_file()
    result.shared_file_scan_ids = [new_scan([shared, new_file()])[0], new_scan([shared, new_file()])[0]]
    return result, m

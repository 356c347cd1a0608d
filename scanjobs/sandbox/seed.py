"""Deterministic seed data for both instances: master data, processed source scans, image files."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from scanjobs.sandbox.images import write_image

# Id offsets per instance: the target has the same names under different ids, so code that
# forgets to translate ids by name fails loudly instead of passing by accident.
OFFSETS: dict[str, dict[str, int]] = {
    "source": {
        "store": 0,
        "category": 0,
        "planogram": 0,
        "section": 0,
        "product": 0,
        "planogramstore": 0,
        "scan": 10000,
        "file": 20000,
        "realogram": 30000,
        "report": 40000,
        "bay": 0,
        "spc": 0,
        "mlog": 0,
        "scanfile": 0,
    },
    "target": {
        "store": 100,
        "category": 200,
        "planogram": 300,
        "section": 400,
        "product": 5000,
        "planogramstore": 600,
        "scan": 700000,
        "file": 800000,
        "realogram": 900000,
        "report": 950000,
        "bay": 10000,
        "spc": 10000,
        "mlog": 10000,
        "scanfile": 10000,
    },
}
TABLES = {
    "store": "master_data_implementation_store",
    "category": "master_data_implementation_category",
    "file": "master_data_implementation_fileupload",
    "planogram": "planograms_implementation_planogram",
    "planogramstore": "planograms_implementation_planogramstore",
    "section": "planograms_implementation_planogramsection",
    "product": "planograms_implementation_planogramsectionproduct",
    "scan": "realograms_implementation_scan",
    "scanfile": "realograms_implementation_scanfile",
    "realogram": "realograms_implementation_realogram",
    "bay": "realograms_implementation_realogrambay",
    "report": "planograms_compliance_planogramcompliancereport",
    "spc": "planograms_compliance_storeplanogramcompliance",
    "mlog": "planograms_compliance_majorityv2log",
}
STORE_NAMES = ["Store 101 Downtown", "Store 202 Riverside", "Store 303 Airport Rd", "Store 404 Mall"]
CATEGORY_NAMES = ["Beverages", "Snacks", "Dairy", "Household", "Personal Care"]
SECTION_NAMES = [
    "Sec 1 - 4ft",
    "Sec 2 - 4ft",
    "Endcap",
    "Top Shelf",
    "Chips / Snacks",
    "Cooler Door 3",
    "Promo Bay",
    "Lower Shelves",
]
MAP_BY = ["barcode", "majority", "section_hint", "price_tag", "neighbour"]
TARGET_STORE_NAME = "QA Copy Target"
HISTORY_DAYS = 12


@dataclass(frozen=True)
class SectionSpec:
    """A planogram section by name; additional when a product says so."""

    name: str
    additional: bool


@dataclass(frozen=True)
class PlanogramSpec:
    """A planogram (POG) by name with its category and sections."""

    name: str
    category: str
    sections: tuple[SectionSpec, ...]


@dataclass
class MasterSpec:
    """The names shared by both instances."""

    stores: list[str]
    categories: list[str]
    planograms: list[PlanogramSpec]


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


def master_spec(rng: random.Random) -> MasterSpec:
    """Stores, categories and 4-6 planograms of 2-4 sections, about 20% additional."""
    categories = CATEGORY_NAMES[:4]
    planograms: list[PlanogramSpec] = []
    for n in range(rng.randint(4, 6)):
        category = categories[n % len(categories)]
        names = rng.sample(SECTION_NAMES, rng.randint(2, 4))
        sections = tuple(SectionSpec(name, rng.random() < 0.2) for name in names)
        planograms.append(PlanogramSpec(f"{category} POG {n + 1:02d}", category, sections))
    # Guarantee at least one additional section so every analysis comment can occur.
    first = planograms[0]
    if not any(s.additional for p in planograms for s in p.sections):
        last = first.sections[-1]
        planograms[0] = PlanogramSpec(
            first.name, first.category, (*first.sections[:-1], SectionSpec(last.name, True))
        )
    return MasterSpec(STORE_NAMES[:3], categories, planograms)


class Ids:
    """Sequential ids per table starting after the instance's offset."""

    def __init__(self, instance: str) -> None:
        self._next = {k: v + 1 for k, v in OFFSETS[instance].items()}

    def take(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] += 1
        return value


@dataclass
class InstanceMaster:
    """Ids of the master data as inserted into one instance."""

    stores: dict[str, int] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)
    planograms: dict[str, int] = field(default_factory=dict)
    sections: dict[tuple[str, str], int] = field(default_factory=dict)
    store_pogs: dict[tuple[int, int], int] = field(default_factory=dict)


def _rate(rng: random.Random, low: float = 35.0, high: float = 98.0) -> float:
    return round(rng.uniform(low, high), 1)


def _compliance_row(rng: random.Random, spc_id: int, store_pog: int, day: dt.date) -> tuple[Any, ...]:
    pre = _rate(rng, 30, 92)
    post = min(100.0, round(pre + rng.uniform(0, 8), 1))
    post_osa = None if rng.random() < 0.05 else _rate(rng, 70, 100)  # realistic gaps
    return (
        spc_id,
        store_pog,
        day,
        pre,
        post,
        _rate(rng, 60, 98),
        post_osa,
        _rate(rng),
        _rate(rng),
        _rate(rng),
        pre,
    )


def insert_compliance(cur: psycopg.Cursor[Any], rows: list[tuple[Any, ...]]) -> None:
    """Insert daily store-POG compliance rows (id included)."""
    cur.executemany(
        f"INSERT INTO {TABLES['spc']} (id, store_planogram_id, date, pre_compliance,"
        " post_compliance, pre_osa, post_osa, facing_compliance, sequence_pre_compliance,"
        " sequence_post_compliance, initial_pre_compliance)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        rows,
    )


def insert_master(
    cur: psycopg.Cursor[Any],
    spec: MasterSpec,
    ids: Ids,
    rng: random.Random,
    extra_store: str | None,
    today: dt.date,
) -> InstanceMaster:
    """Insert the master data, store POGs for every store x POG and their daily compliance."""
    m = InstanceMaster()
    for name in spec.stores + ([extra_store] if extra_store else []):
        m.stores[name] = ids.take("store")
        cur.execute(f"INSERT INTO {TABLES['store']} (id, name) VALUES (%s, %s)", (m.stores[name], name))
    for name in spec.categories:
        m.categories[name] = ids.take("category")
        cur.execute(
            f"INSERT INTO {TABLES['category']} (id, name) VALUES (%s, %s)", (m.categories[name], name)
        )
    for pog in spec.planograms:
        pid = m.planograms[pog.name] = ids.take("planogram")
        cur.execute(
            f"INSERT INTO {TABLES['planogram']} (id, name, category_id) VALUES (%s, %s, %s)",
            (pid, pog.name, m.categories[pog.category]),
        )
        for pos, sec in enumerate(pog.sections):
            sid = m.sections[(pog.name, sec.name)] = ids.take("section")
            cur.execute(
                f"INSERT INTO {TABLES['section']} (id, planogram_id, name, position) VALUES (%s, %s, %s, %s)",
                (sid, pid, sec.name, pos),
            )
            for k in range(3):
                action, merch = rng.choice(["KEEP", "NEW", "MOVE"]), rng.choice(["Shelf", "Peg"])
                if sec.additional and k == 0:
                    if rng.random() < 0.5:
                        action = "Additional Facing"
                    else:
                        merch = "ADDITIONAL display"
                cur.execute(
                    f"INSERT INTO {TABLES['product']} (id, section_id, upc, action, merch_method,"
                    " facings) VALUES (%s, %s, %s, %s, %s, %s)",
                    (
                        ids.take("product"),
                        sid,
                        f"0{rng.randrange(10**11):011d}",
                        action,
                        merch,
                        rng.randint(1, 6),
                    ),
                )
    rows = []
    for store_id in m.stores.values():
        for pid in m.planograms.values():
            sp = m.store_pogs[(store_id, pid)] = ids.take("planogramstore")
            cur.execute(
                f"INSERT INTO {TABLES['planogramstore']} (id, planogram_id, store_id) VALUES (%s, %s, %s)",
                (sp, pid, store_id),
            )
            for back in range(HISTORY_DAYS, -1, -1):
                day = today - dt.timedelta(days=back)
                rows.append(_compliance_row(rng, ids.take("spc"), sp, day))
    insert_compliance(cur, rows)
    return m


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
    rate = None if rng.random() < 0.04 else _rate(rng)
    return rate, _rate(rng), _rate(rng), _rate(rng), Jsonb(rates)


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
            " has_report, selected_category_id, active_realogram_id, provided_values)"
            " VALUES (%s, %s, %s, %s, 'done', true, %s, %s, %s)",
            (scan_id, store_id, created, created, payload["category_id"], realogram, Jsonb(values)),
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
        for sec in sections:
            cur.execute(
                f"INSERT INTO {TABLES['report']} (id, realogram_id, store_planogram_id,"
                " planogram_id, section_id, section_name, aisle_name, compliance_rate,"
                " facing_compliance_rate, sequence_compliance_rate, initial_pre_compliance,"
                " compliance_rates, scan_created_date)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    ids.take("report"),
                    realogram,
                    store_pog,
                    pog_id,
                    m.sections[(pog.name, sec.name)],
                    sec.name,
                    payload["aisle"],
                    *_report_values(rng),
                    created,
                ),
            )
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


def seed_target(
    cur: psycopg.Cursor[Any], spec: MasterSpec, rng: random.Random, today: dt.date
) -> tuple[int, InstanceMaster]:
    """The same master data under other ids, plus an empty store to copy scans into.

    Staging's planograms are a little newer than production's: the first plain section of the
    first two planograms has an additional product there, so a scan mapped to the same section
    on both sides can still meet "Target Has Additional Section (Source Does Not)".
    """
    spec = staging_spec(spec)
    m = insert_master(cur, spec, Ids("target"), rng, TARGET_STORE_NAME, today)
    return m.stores[TARGET_STORE_NAME], m


def staging_spec(spec: MasterSpec) -> MasterSpec:
    """`spec` with the first plain section of the first two planograms made additional."""
    planograms = list(spec.planograms)
    for n, pog in enumerate(planograms[:2]):
        plain = [i for i, sec in enumerate(pog.sections) if not sec.additional]
        if plain:
            sections = list(pog.sections)
            sections[plain[0]] = SectionSpec(sections[plain[0]].name, True)
            planograms[n] = PlanogramSpec(pog.name, pog.category, tuple(sections))
    return MasterSpec(spec.stores, spec.categories, planograms)


def reset_sequences(cur: psycopg.Cursor[Any], instance: str) -> None:
    """Continue every id sequence after the seeded rows (or the instance's offset)."""
    for kind, table in TABLES.items():
        floor = OFFSETS[instance][kind]
        cur.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
            f" GREATEST((SELECT COALESCE(max(id), 0) FROM {table}), %s) + 1, false)",
            (floor,),
        )

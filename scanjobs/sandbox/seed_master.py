"""Deterministic master data for both instances: stores, categories, planograms, daily compliance."""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass, field
from typing import Any

import psycopg

from scanjobs.sandbox.tables import TABLES, Ids

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


@dataclass
class InstanceMaster:
    """Ids of the master data as inserted into one instance."""

    stores: dict[str, int] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)
    planograms: dict[str, int] = field(default_factory=dict)
    sections: dict[tuple[str, str], int] = field(default_factory=dict)
    store_pogs: dict[tuple[int, int], int] = field(default_factory=dict)


def store_number(name: str, store_id: int) -> str:
    """A store's custom_id (the retailer's number): the number in its name, else QA and its id."""
    found = re.search(r"\d+", name)
    return found.group() if found else f"QA{store_id}"


def rate(rng: random.Random, low: float = 35.0, high: float = 98.0) -> float:
    """A percentage with one decimal, uniform in [low, high]."""
    return round(rng.uniform(low, high), 1)


def _compliance_row(rng: random.Random, spc_id: int, store_pog: int, day: dt.date) -> tuple[Any, ...]:
    pre = rate(rng, 30, 92)
    post = min(100.0, round(pre + rng.uniform(0, 8), 1))
    post_osa = None if rng.random() < 0.05 else rate(rng, 70, 100)  # realistic gaps
    return (
        spc_id,
        store_pog,
        day,
        pre,
        post,
        rate(rng, 60, 98),
        post_osa,
        rate(rng),
        rate(rng),
        rate(rng),
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
        cur.execute(
            f"INSERT INTO {TABLES['store']} (id, name, custom_id) VALUES (%s, %s, %s)",
            (m.stores[name], name, store_number(name, m.stores[name])),
        )
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

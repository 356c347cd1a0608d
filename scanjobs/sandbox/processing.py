"""Simulated processing: a created scan goes `in progress`, then ends `done` with a realogram and
an MA-chosen mapping, or (as on the platform) in `error`, or `done` without a report.

What processing writes is a pure function of the sandbox's seed and the scan: how it ends, from
its instance and files (`outcome_rng`); the mapping, from its store and files too (`scan_rng`);
and the daily compliance row of a store POG of its day (`day_rng`). Never of the order scans are
created or finish in, which thread timing decides.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from scanjobs.sandbox.instance import Instance
from scanjobs.sandbox.seed_scans import SourceTruth
from scanjobs.sandbox.tables import TABLES, ScanStatus

log = logging.getLogger("scanjobs.sandbox")

# Shares of processed scans that end in error (recognition failed: no realogram), that end done
# without a report (has_report false), and that were recalculated once (an inactive older report).
FAILED = 0.08
REPORTLESS = 0.08
RECALCULATED = 0.25


@dataclass(frozen=True)
class Section:
    """A section of this instance with its planogram."""

    id: int
    name: str
    planogram_id: int
    planogram: str
    category_id: int | None
    additional: bool


async def _sections(conn: psycopg.AsyncConnection[Any]) -> list[Section]:
    cur = await conn.execute(
        f"SELECT s.id, s.name, p.id, p.name, p.category_id, EXISTS (SELECT 1 FROM {TABLES['product']}"
        " pr WHERE pr.section_id = s.id AND (pr.action ILIKE '%%additional%%'"
        " OR pr.merch_method ILIKE '%%additional%%'))"
        f" FROM {TABLES['section']} s JOIN {TABLES['planogram']} p ON p.id = s.planogram_id"
        " ORDER BY s.id"
    )
    return [Section(*row) for row in await cur.fetchall()]


def choose_section(
    rng: random.Random,
    sections: list[Section],
    truth: SourceTruth | None,
    hint: Section | None,
    accuracy: float,
) -> tuple[Section, str]:
    """The MA: the right section with probability `accuracy`, else a plausible wrong one."""
    right: Section | None = hint
    if right is None and truth is not None:
        right = next(
            (s for s in sections if s.planogram == truth.planogram and s.name == truth.section), None
        )
    if right is None:
        return rng.choice(sections), "fallback"
    if rng.random() < accuracy:
        return right, "section_hint" if hint is not None else rng.choice(["barcode", "majority"])
    wrong = {
        "other_section": [s for s in sections if s.planogram_id == right.planogram_id and s.id != right.id],
        "other_planogram": [s for s in sections if s.planogram_id != right.planogram_id],
        "additional": [s for s in sections if s.additional and s.id != right.id],
    }
    options = [kind for kind, found in wrong.items() if found]
    if not options:
        return right, "majority"
    return rng.choice(wrong[rng.choice(options)]), "neighbour"


def _rate(rng: random.Random, low: float = 35.0, high: float = 98.0) -> float:
    return round(rng.uniform(low, high), 1)


def scan_rng(seed: int, instance: str, store_id: int, checksums: list[str], scan_id: int) -> random.Random:
    """The random source of one scan's processing: the same scan content in the same store of a
    sandbox of the same seed is processed the same way, whenever it comes. The scan id counts
    only for a scan without files (its id is then all there is)."""
    content = ",".join(sorted(checksums)) if checksums else f"scan {scan_id}"
    return random.Random(f"processing {seed} {instance} store {store_id} {content}")


def outcome_rng(seed: int, instance: str, checksums: list[str], scan_id: int) -> random.Random:
    """The random source of how a scan's processing ends (error, done without a report, or done
    and maybe recalculated): a function of the scan's content alone, so a copy of one source scan
    ends the same way in any store."""
    content = ",".join(sorted(checksums)) if checksums else f"scan {scan_id}"
    return random.Random(f"outcome {seed} {instance} {content}")


def day_rng(seed: int, instance: str, store_id: int, planogram_id: int, day: dt.date) -> random.Random:
    """The random source of a store POG's compliance row of one day: whichever scan is processed
    first on that day writes the same row."""
    return random.Random(f"compliance {seed} {instance} store {store_id} pog {planogram_id} {day}")


async def process_scan(inst: Instance, scan_id: int) -> None:
    """Wait the processing delay, then write what the platform would after recognition."""
    try:
        await asyncio.sleep(inst.config.processing_delay / 2)
        async with inst.pool.connection() as conn:
            await conn.execute(
                f"UPDATE {TABLES['scan']} SET status = %s, updated_at = now(),"
                " processing_start_time = now() WHERE id = %s",
                (ScanStatus.IN_PROGRESS, scan_id),
            )
        await asyncio.sleep(inst.config.processing_delay / 2)
        async with inst.pool.connection() as conn, conn.transaction():
            await _finish(conn, inst, scan_id)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("processing scan %s failed", scan_id)
        async with inst.pool.connection() as conn:
            await _end(conn, scan_id, ScanStatus.ERROR)


async def _store_planogram(conn: psycopg.AsyncConnection[Any], store_id: int, planogram_id: int) -> int:
    """The store POG of a planogram in a store, made when the store has none."""
    cur = await conn.execute(
        f"SELECT id FROM {TABLES['planogramstore']} WHERE store_id = %s AND planogram_id = %s"
        " ORDER BY id LIMIT 1",
        (store_id, planogram_id),
    )
    row = await cur.fetchone()
    if row is None:
        cur = await conn.execute(
            f"INSERT INTO {TABLES['planogramstore']} (planogram_id, store_id) VALUES (%s, %s) RETURNING id",
            (planogram_id, store_id),
        )
        row = await cur.fetchone()
        assert row is not None
    return int(row[0])


async def _report(
    conn: psycopg.AsyncConnection[Any],
    rng: random.Random,
    realogram: int,
    store_pog: int,
    sec: Section,
    payload: dict[str, Any],
    pre: float,
    day: dt.date,
    *,
    active: bool,
) -> None:
    """One compliance report of a realogram for a section."""
    rates = {
        "osa": rng.randint(60, 100),
        "correct": rng.randint(5, 80),
        "wandering": rng.randint(0, 9),
        "missing": rng.randint(0, 15),
        "empty": rng.randint(0, 6),
    }
    await conn.execute(
        f"INSERT INTO {TABLES['report']} (realogram_id, store_planogram_id, planogram_id,"
        " section_id, section_name, aisle_name, compliance_rate, facing_compliance_rate,"
        " sequence_compliance_rate, initial_pre_compliance, compliance_rates,"
        " scan_created_date, is_last_active) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            realogram,
            store_pog,
            sec.planogram_id,
            sec.id,
            sec.name,
            payload.get("aisle"),
            _rate(rng),
            _rate(rng),
            _rate(rng),
            pre,
            Jsonb(rates),
            day,
            active,
        ),
    )


async def _finish(conn: psycopg.AsyncConnection[Any], inst: Instance, scan_id: int) -> None:
    cur = await conn.execute(
        f"SELECT store_id, created_at, provided_values FROM {TABLES['scan']} WHERE id = %s",
        (scan_id,),
    )
    scan = await cur.fetchone()
    assert scan is not None
    store_id, created, values = scan
    payload = values.get("_raw_data", values) if isinstance(values, dict) else {}
    cur = await conn.execute(
        f"SELECT f.checksum FROM {TABLES['scanfile']} sf JOIN {TABLES['file']} f"
        " ON f.id = sf.file_id WHERE sf.scan_id = %s ORDER BY sf.id",
        (scan_id,),
    )
    checksums = [c for (c,) in await cur.fetchall()]
    truth = next((inst.truth[c] for c in checksums if c in inst.truth), None)
    rng = scan_rng(inst.seed, inst.name, store_id, checksums, scan_id)
    outcome = outcome_rng(inst.seed, inst.name, checksums, scan_id)
    ending = outcome.random()
    if ending < FAILED:
        await _end(conn, scan_id, ScanStatus.ERROR)
        return
    if ending < FAILED + REPORTLESS:
        await _end(conn, scan_id, ScanStatus.DONE, realogram=await _realogram(conn, rng, scan_id))
        return
    sections = await _sections(conn)
    hint = next((s for s in sections if s.id == payload.get("section_id")), None)
    section, map_by = choose_section(rng, sections, truth, hint, inst.config.ma_accuracy)

    store_pog = await _store_planogram(conn, store_id, section.planogram_id)

    # The scan's own pre POG % lies around the source's (higher a good part of the time), so
    # that every comment of the analysis occurs.
    base = truth.pre_compliance if truth and truth.pre_compliance is not None else _rate(rng, 30, 90)
    pre = round(min(100.0, max(0.0, base + rng.uniform(-12, 8))), 1)
    # The platform's day of a scan, whatever time zone this session reads timestamps in.
    day: dt.date = created.astimezone(dt.timezone.utc).date()
    # A day's row of a store POG is the same whichever scan of that day comes first.
    day_random = day_rng(inst.seed, inst.name, store_id, section.planogram_id, day)
    day_pre = _rate(day_random, 30, 90)
    await conn.execute(
        f"INSERT INTO {TABLES['spc']} (store_planogram_id, date, pre_compliance, post_compliance,"
        " pre_osa, post_osa, facing_compliance, sequence_pre_compliance, sequence_post_compliance,"
        " initial_pre_compliance) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (store_planogram_id, date) DO NOTHING",
        (
            store_pog,
            day,
            day_pre,
            min(100.0, round(day_pre + day_random.uniform(0, 8), 1)),
            _rate(day_random, 60, 98),
            _rate(day_random, 70, 100),
            _rate(day_random),
            _rate(day_random),
            _rate(day_random),
            day_pre,
        ),
    )

    realogram = await _realogram(conn, rng, scan_id)
    reported = [section]
    siblings = [s for s in sections if s.planogram_id == section.planogram_id and s != section]
    if siblings and rng.random() < 0.3:
        reported.append(rng.choice(siblings))
    elsewhere = [s for s in sections if s not in reported]
    if outcome.random() < RECALCULATED and elsewhere:
        # The version before a recalculation mapped the scan elsewhere, and stays in the table
        # inactive: a reader of every version would show a section the platform no longer reports.
        older = outcome.choice(elsewhere)
        older_pog = await _store_planogram(conn, store_id, older.planogram_id)
        await _report(conn, outcome, realogram, older_pog, older, payload, pre, day, active=False)
    for sec in reported:
        await _report(conn, rng, realogram, store_pog, sec, payload, pre, day, active=True)
    await conn.execute(
        f"INSERT INTO {TABLES['mlog']} (store_planogram_id, scan_created_date, data) VALUES (%s, %s, %s)",
        (store_pog, created, Jsonb({str(scan_id): {"map_by": map_by}})),
    )
    await _end(
        conn, scan_id, ScanStatus.DONE, realogram=realogram, reported=True, category=section.category_id
    )


async def _realogram(conn: psycopg.AsyncConnection[Any], rng: random.Random, scan_id: int) -> int:
    """A new realogram of the scan with 1-3 bays."""
    cur = await conn.execute(
        f"INSERT INTO {TABLES['realogram']} (scan_id) VALUES (%s) RETURNING id", (scan_id,)
    )
    row = await cur.fetchone()
    assert row is not None
    for bay in range(rng.randint(1, 3)):
        await conn.execute(
            f"INSERT INTO {TABLES['bay']} (realogram_id, number) VALUES (%s, %s)", (row[0], bay + 1)
        )
    return int(row[0])


async def _end(
    conn: psycopg.AsyncConnection[Any],
    scan_id: int,
    status: ScanStatus,
    *,
    realogram: int | None = None,
    reported: bool = False,
    category: int | None = None,
) -> None:
    """Processing ended: its status, and what it made (the realogram, whether it has reports)."""
    await conn.execute(
        f"UPDATE {TABLES['scan']} SET status = %s, has_report = %s, updated_at = now(),"
        " processing_finish_time = now(), active_realogram_id = %s,"
        " selected_category_id = COALESCE(selected_category_id, %s) WHERE id = %s",
        (status, reported, realogram, category, scan_id),
    )

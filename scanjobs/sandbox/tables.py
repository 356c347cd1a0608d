"""The platform tables the sandbox holds (docs/platform.md), and each instance's id ranges in them."""

from __future__ import annotations

from enum import Enum
from typing import Any

import psycopg


class ScanStatus(str, Enum):
    """A scan's processing status, in the platform's words (its client's list). Finished means
    done, error or interrupted; only a done scan has a realogram, and maybe reports. A str, so
    psycopg sends its value."""

    CREATED = "action created"
    IN_PROGRESS = "in progress"
    DONE = "done"
    ERROR = "error"
    INTERRUPTED = "interrupted"


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


class Ids:
    """Sequential ids per table starting after the instance's offset."""

    def __init__(self, instance: str) -> None:
        self._next = {k: v + 1 for k, v in OFFSETS[instance].items()}

    def take(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] += 1
        return value


def reset_sequences(cur: psycopg.Cursor[Any], instance: str) -> None:
    """Continue every id sequence after the seeded rows (or the instance's offset)."""
    for kind, table in TABLES.items():
        floor = OFFSETS[instance][kind]
        cur.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
            f" GREATEST((SELECT COALESCE(max(id), 0) FROM {table}), %s) + 1, false)",
            (floor,),
        )

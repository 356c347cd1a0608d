"""The state beside each job: what was done, so that a rerun resumes and never does it twice.

- `records`: item kinds and statuses, an item's record, the counts (`StateCounts`);
- `store`: `StateStore`, opening a state and its transitions (`record_intent`, `mark_done`,
  `mark_failed`), each one transaction;
- `paths`: `StatePaths`, the files of a state (database, WAL/SHM/journal, lock, log, backups) and
  what is done to them as a whole (move aside, delete);
- `lock`: `RunLock`, one run of a job at a time;
- `migrations`: the format, `FORMAT_VERSION` and the numbered migrations up to it.
"""

from __future__ import annotations

from scanjobs.state.lock import RunLock
from scanjobs.state.migrations import FORMAT_VERSION, MIGRATIONS, Migration
from scanjobs.state.paths import StatePaths, state_files
from scanjobs.state.records import ItemKind, ItemRecord, RunRecord, StateCounts, Status, StepCount
from scanjobs.state.store import SELECTION_DAY, StateStore

__all__ = [
    "FORMAT_VERSION",
    "MIGRATIONS",
    "ItemKind",
    "ItemRecord",
    "Migration",
    "RunLock",
    "RunRecord",
    "SELECTION_DAY",
    "StateCounts",
    "StatePaths",
    "StateStore",
    "Status",
    "StepCount",
    "state_files",
]

"""scans.query as people write it, against the sandbox (issue 15, point 4): relative dates that
select what the equivalent absolute range does and do not drift when a run is resumed the next
day, several stores in one query, and a query that selects nothing saying why."""

from __future__ import annotations

import json
import textwrap
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from scanjobs.cli import main
from scanjobs.sandbox import Sandbox
from scanjobs.sandboxjobs import write_sandbox_instances
from scanjobs.state import ItemKind, StateStore

pytestmark = pytest.mark.integration


def _scans(sb: Sandbox) -> list[tuple[int, int, date]]:
    """Independent SQL: every processed source scan (id, store, creation date)."""
    with psycopg.connect(**sb.db("source")) as conn:
        rows = conn.execute(
            "SELECT id, store_id, created_at::date FROM realograms_implementation_scan "
            "WHERE status = 'done' ORDER BY id"
        ).fetchall()
    return [(int(i), int(store), day) for i, store, day in rows]


def _between(scans: list[tuple[int, int, date]], stores: list[int], first: date, last: date) -> set[int]:
    return {i for i, store, day in scans if store in stores and first <= day <= last}


def _job(folder: Path, sb: Sandbox, name: str, query: str) -> Path:
    write_sandbox_instances(sb.info, folder)
    path = folder / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        version: 1
        mode: download
        source: sandbox-source
        scans:
          query: {query}
        batch: {{workers: {{download: 8}}}}
        output: images-{name}
        """)
    )
    return path


def _run(path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]]]:
    code = main(["run", str(path), "--json", *args])
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return code, events


def _selected(path: Path) -> set[int]:
    state = StateStore.open(path.with_name(path.stem + ".state.sqlite"), create=False)
    try:
        return {r.source_id for r in state.items(ItemKind.SCAN, selected_only=True) if r.source_id}
    finally:
        state.close()


def test_relative_dates_select_the_absolute_range_and_a_rerun_next_day_keeps_it(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = _scans(sandbox)
    stores = sorted({store for _, store, _ in scans})[:2]
    assert len(stores) == 2
    # a day whose window (-1w .. yesterday) starts on a day with scans: the window of the next
    # day leaves those scans out, so a run that drifted would select other scans
    earliest = min(day for _, store, day in scans if store in stores)
    today = earliest + timedelta(days=7)
    week = _between(scans, stores, earliest, today - timedelta(days=1))
    next_week = _between(scans, stores, earliest + timedelta(days=1), today)
    assert week and week != next_week

    monkeypatch.setenv("SCANJOBS_TODAY", today.isoformat())
    relative = _job(tmp_path, sandbox, "relative", f"{{store: {stores}, from: -1w, to: yesterday}}")
    last = today - timedelta(days=1)
    absolute = _job(tmp_path, sandbox, "absolute", f"{{store: {stores}, from: {earliest}, to: {last}}}")
    code, events = _run(relative, capsys)
    assert code == 0
    first_total = next(e for e in events if e["event"] == "selected")["total"]
    assert _run(absolute, capsys)[0] == 0
    assert _selected(relative) == _selected(absolute) == week
    said = [e["message"] for e in events if e["event"] == "info" and "scans.query" in e["message"]]
    assert said == [
        f"scans.query: stores {stores[0]}, {stores[1]} scans (status done) from -1w to yesterday "
        f"({earliest} to {today - timedelta(days=1)}), counted from today"
    ]

    # the next day: the run resumes the same selection, and says from which day it counts
    monkeypatch.setenv("SCANJOBS_TODAY", (today + timedelta(days=1)).isoformat())
    code, events = _run(relative, capsys)
    assert code == 0
    assert _selected(relative) == week
    started = next(e for e in events if e["event"] == "selected")
    assert started["total"] == first_total and started["already_done"] == first_total
    assert any(f"counted from {today}, the day this job's first run" in e.get("message", "") for e in events)
    # plan counts as the run would, and status shows the day
    assert main(["plan", str(relative)]) == 0
    assert f"counted from {today}" in capsys.readouterr().out
    assert main(["status", str(relative)]) == 0
    assert f"({earliest} to {today - timedelta(days=1)}), counted from {today}" in capsys.readouterr().out
    assert main(["status", str(relative), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["selection"]["day"] == today.isoformat()

    # --restart starts a new state, which counts from its own first run
    assert _run(relative, capsys, "--restart")[0] == 0
    assert _selected(relative) == next_week


def test_a_query_that_selects_nothing_says_what_its_stores_hold(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scans = _scans(sandbox)
    store = scans[0][1]
    days = [day for _, s, day in scans if s == store]
    unknown = max(s for _, s, _ in scans) + 1000
    query = f"{{store: [{store}, {unknown}], from: 2001-01-01, to: 2001-01-31}}"
    path = _job(tmp_path, sandbox, "empty", query)
    code, events = _run(path, capsys)
    assert code == 0  # nothing to do is not a failure
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert warnings == [
        f"scans.query selected no scans: it asks for stores {store}, {unknown} scans (status done) from "
        f"2001-01-01 to 2001-01-31; store {store} has {len(days)} scan(s) with status done, created "
        f"{min(days)} to {max(days)}; store {unknown} has no scans"
    ]
    assert main(["plan", str(path)]) == 0
    assert f"store {store} has {len(days)} scan(s) with status done" in capsys.readouterr().out

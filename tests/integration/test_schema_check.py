"""A platform whose schema lacks what a job reads: `plan` names it, `run` stops before sending
anything (exit 5); a feature the run can do without is said to be off, and the run goes on."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from copy_support import read_mapping, scans_in_store, uploads_in_store, write_copy_job

from scanjobs.cli import main
from scanjobs.ownership import OWNER_MARKER
from scanjobs.sandbox import Sandbox
from scanjobs.sandboxjobs import write_sandbox_instances

pytestmark = pytest.mark.integration

SECTION_NAME = "planograms_implementation_planogramsection.name"
STORE_POG_STORE = "planograms_implementation_planogramstore.store_id"
BAYS = "realograms_implementation_realogrambay"
UPLOAD_COLUMNS = tuple(
    f"master_data_implementation_fileupload.{c}" for c in ("checksum", "created_at", "original_filename")
)
REPORT_SECTION = "planograms_compliance_planogramcompliancereport.section_name"


@pytest.fixture(scope="module")
def lacking(sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    """A sandbox whose read-only user does not see the columns no outside source confirms (and
    a whole table): as a platform whose schema lacks them."""
    hidden = [f"target:{c}" for c in (SECTION_NAME, STORE_POG_STORE, BAYS, *UPLOAD_COLUMNS)]
    return sandbox_factory(
        scans=4,
        files_per_scan=2,
        processing_delay=0.2,
        seed=13,
        without_column=(*hidden, f"source:{REPORT_SECTION}"),
    )


def creating_requests(sb: Sandbox) -> list[dict[str, Any]]:
    """Requests that create something, or move bytes, on either instance."""
    return [
        r
        for instance in ("source", "target")
        for r in sb.stats(instance)["requests"]
        if (r["method"] == "POST" and r["route"] != "/api/v4/token-auth/")
        or r["route"].startswith("/_storage")
    ]


@pytest.mark.parametrize(
    ("strategy", "missing", "not_read"),
    [
        ("mapped", (SECTION_NAME, STORE_POG_STORE, f"table {BAYS}"), ()),
        # auto reads no name of a section nor the store of a store POG: only the analysis' bays
        ("auto", (f"table {BAYS}",), (SECTION_NAME, STORE_POG_STORE)),
    ],
)
def test_copy_names_what_the_target_lacks_and_sends_nothing(
    lacking: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    strategy: str,
    missing: tuple[str, ...],
    not_read: tuple[str, ...],
) -> None:
    """issue 13, point 10: every missing table and column in one message, before any request
    (the copy used to run, and its analysis failed once the scans were created)."""
    store = lacking.new_target_store()
    job = write_copy_job(
        tmp_path,
        lacking,
        store=store,
        scan_ids=lacking.info["source_scan_ids"][:2],
        strategy=strategy,
        analysis={"enabled": True, "wait_for_processing": "30s"},
    )
    lacking.reset_stats()
    assert main(["plan", str(job), "--json"]) == 5
    plan = json.loads(capsys.readouterr().out)
    # the analysis reads the source's report sections too: each database gets its own line
    source, target = (line for line in plan["lines"] if line.startswith("  FAIL"))
    assert (
        source.startswith("  FAIL tables and columns read on sandbox-source: missing ")
        and REPORT_SECTION in source
    )
    assert target.startswith("  FAIL tables and columns read on sandbox-target: missing "), target
    assert all(name in target for name in missing) and not any(name in target for name in not_read)
    assert REPORT_SECTION in plan["verdict"] and plan["verdict"].endswith("(exit 5)"), plan["verdict"]
    assert main(["run", str(job)]) == 5
    err = capsys.readouterr().err  # one message: all of both databases
    assert err.count("\n") == 2 and "reads what the platform lacks" in err, err
    assert all(name in err for name in (*missing, REPORT_SECTION)), err
    assert not any(name in err for name in not_read), err
    assert creating_requests(lacking) == []
    assert scans_in_store(lacking, store) == {}


def test_auto_copy_goes_on_without_upload_adoption(
    lacking: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """issue 13, point 10: strategy auto reads neither missing column; adoption is off, said so."""
    store, ids = lacking.new_target_store(), lacking.info["source_scan_ids"][:2]
    job = write_copy_job(tmp_path, lacking, store=store, scan_ids=ids)
    assert main(["plan", str(job)]) == 0
    out = capsys.readouterr().out
    assert "ok   tables and columns read on sandbox-target" in out, out
    assert "upload adoption is off" in out and all(c in out for c in UPLOAD_COLUMNS), out
    assert main(["run", str(job)]) == 0
    out = capsys.readouterr().out
    assert "warning: upload adoption is off" in out and "uploaded again" in out, out
    assert sorted(read_mapping(job)) == sorted(ids) and len(scans_in_store(lacking, store)) == 2
    assert uploads_in_store(lacking, store) == 4


def test_download_and_analyze_name_what_the_source_lacks(
    lacking: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """issue 13, point 10: the source's report table lacks the section name both modes read."""
    write_sandbox_instances(lacking.info, tmp_path)
    ids = lacking.info["source_scan_ids"][:2]
    download = tmp_path / "download.yaml"
    download.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "mode": "download",
                "source": "sandbox-source",
                "scans": {"ids": ids},
                "output": "images",
            }
        )
    )
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("Source_Scan_ID,Target_Scan_ID\n" + "".join(f"{i},\n" for i in ids))
    analyze = tmp_path / "analyze.yaml"
    analyze.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "mode": "analyze",
                "source": "sandbox-source",
                "target": {"instance": "sandbox-target"},
                "scans": {"pairs": str(pairs)},
                "output": "reports",
            }
        )
    )
    lacking.reset_stats()
    for job in (download, analyze):
        assert main(["plan", str(job)]) == 5
        out = capsys.readouterr().out
        assert "FAIL tables and columns read on sandbox-source: missing " in out, out
        assert REPORT_SECTION in out, out
        assert main(["run", str(job)]) == 5
        assert REPORT_SECTION in capsys.readouterr().err
    assert creating_requests(lacking) == []
    # the output folders hold at most their owner marker: nothing downloaded, no report
    for folder in (tmp_path / "images", tmp_path / "reports"):
        assert [p.name for p in folder.glob("*")] in ([], [OWNER_MARKER]), folder


def test_the_sandbox_refuses_to_hide_what_it_does_not_have(sandbox_factory: Callable[..., Sandbox]) -> None:
    """issue 13, point 10: a misspelt --without-column would hide nothing and prove nothing."""
    with pytest.raises(RuntimeError, match="realograms_implementation_scan has no column nmae"):
        sandbox_factory(scans=1, without_column=("realograms_implementation_scan.nmae",))

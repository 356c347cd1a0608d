"""What each mode reads from each database (modes/reads.py): the queries its plan and run check."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from scanjobs.jobfile import load_job
from scanjobs.modes.reads import ADOPTION, job_reads
from scanjobs.platform.columns import FILEUPLOAD, PLANOGRAMSTORE, SECTION, needed

INSTANCES = """\
    instances:
      prod: {}
      stg: {}
    """


def _job(tmp_path: Path, body: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "job.yaml"
    path.write_text(textwrap.dedent(body) + textwrap.dedent(INSTANCES))
    (tmp_path / "pairs.csv").write_text("Source_Scan_ID,Target_Scan_ID\n1,2\n")
    return load_job(path, environ={})


def _columns(queries: frozenset[str]) -> set[str]:
    return {f"{t}.{c}" for t, cols in needed(queries).items() for c in cols}


COPY = """\
    version: 1
    mode: copy
    source: prod
    target: {{instance: stg, store: 8}}
    scans: {scans}
    copy: {{strategy: {strategy}}}
    analysis: {{enabled: {analysis}}}
    """


@pytest.mark.parametrize("strategy", ["auto", "mapped"])
@pytest.mark.parametrize("analysis", [False, True])
def test_copy_reads_follow_the_strategy_and_the_analysis(
    tmp_path: Path, strategy: str, analysis: bool
) -> None:
    """issue 13, point 10: the names of sections and the store of a store POG are read only by
    strategy mapped; the upload table's unconfirmed columns only by adoption, which is optional."""
    job = _job(
        tmp_path, COPY.format(scans="{ids: [1, 2]}", strategy=strategy, analysis=str(analysis).lower())
    )
    source, target = job_reads(job)
    assert (source.side, source.instance.name, target.side, target.instance.name) == (
        "source",
        "prod",
        "target",
        "stg",
    )
    assert {"scan_ids_existing", "scans_with_files"} <= source.required
    assert "store_exists" in target.required
    mapped = {f"{SECTION}.name", f"{PLANOGRAMSTORE}.store_id"}
    assert (mapped <= _columns(target.required)) == (strategy == "mapped")
    assert (f"{SECTION}.name" in _columns(source.required)) == (strategy == "mapped")
    assert ("scan_details" in source.required) == analysis == ("processing_status" in target.required)
    assert dict(target.optional) == {ADOPTION: frozenset({"clock", "unclaimed_uploads"})}
    assert not source.optional
    assert not {f"{FILEUPLOAD}.{c}" for c in ("checksum", "created_at", "original_filename")} & (
        _columns(source.required) | _columns(target.required)
    )


def test_a_query_selection_reads_its_own_query(tmp_path: Path) -> None:
    job = _job(tmp_path, COPY.format(scans="{query: {store: 4}}", strategy="auto", analysis="false"))
    source, _ = job_reads(job)
    assert "scan_ids_query" in source.required and "scan_ids_existing" not in source.required


def test_download_and_analyze_reads(tmp_path: Path) -> None:
    """issue 13, point 10: download reads what names the files; analyze, the details on both sides."""
    (download,) = job_reads(_job(tmp_path, "version: 1\nmode: download\nsource: prod\nscans: {ids: [1]}\n"))
    assert download.required == {"scan_ids_existing", "download_info"} and not download.optional
    source, target = job_reads(
        _job(
            tmp_path,
            "version: 1\nmode: analyze\nsource: prod\ntarget: {instance: stg}\nscans: {pairs: pairs.csv}\n",
        )
    )
    assert source.required == {"scan_ids_existing", "scan_details"}
    assert target.required == {"scan_ids_existing", "processing_status", "scan_details"}

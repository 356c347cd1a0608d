"""One job type per mode, and fingerprints pinned to what existing state files recorded.

The fingerprint is stored in every job's state and copy jobs derive their upload request ids
from it: the values below were computed by the code before the job types were split (one
`Job` class), and must never change.
"""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

import scanjobs.jobfile as jobfile_pkg
from scanjobs.errors import JobError
from scanjobs.jobfile import AnalyzeJob, CompareJob, CopyJob, DownloadJob, load_job
from scanjobs.jobfile import model as jobfile_model

STG = 'stg: {api_url: "https://stg.example.com/", db: {host: db.stg.example.com, port: 6543, dbname: stgdb}}'
SAMPLES = {
    "copy_auto": f"""\
        version: 1
        mode: copy
        source: prod
        target: {{instance: stg, store: 8}}
        scans: {{ids: [12345, 12346]}}
        instances:
          prod: {{}}
          {STG}
        """,
    "copy_mapped": """\
        version: 1
        mode: copy
        source: prod
        target: {instance: stg, store: 31}
        scans: {query: {store: 4, from: 2025-08-01}}
        copy: {strategy: mapped, captured_at: source}
        batch: {size: 3}
        output: out/elsewhere
        instances:
          prod: {api_url: "http://127.0.0.1:9000"}
          stg: {}
        """,
    "download": """\
        version: 1
        mode: download
        source: prod
        scans: {file: scans.csv}
        download: {section_max_length: 40}
        output: /scanjobs-pinned/images
        instances:
          prod: {db: {host: 10.0.0.5, port: 5433, dbname: prod_db}}
        """,
    "analyze": """\
        version: 1
        mode: analyze
        source: prod
        target: {instance: stg}
        scans: {pairs: scan_mapping.csv}
        instances:
          prod: {}
          stg: {api_url: "https://stg.example.com"}
        """,
    "analyze_store": """\
        version: 1
        mode: analyze
        source: prod
        target: {instance: stg, store: 9}
        scans: {from_job: copy_auto.yaml}
        instances:
          prod: {}
          stg: {}
        """,
}

PROD = {"api_url": "https://prod.rebotics.net", "db": ["prod-maint.rebotics.net", 5432, "prod"]}
STG_DEFAULT = {"api_url": "https://stg.rebotics.net", "db": ["stg-maint.rebotics.net", 5432, "stg"]}
# name -> (fingerprint, fingerprint_fields), as the single-`Job` code computed them.
PINNED: dict[str, tuple[str, dict[str, object]]] = {
    "copy_auto": (
        "c875de7cbe48ba00302a9fe20dfcefa7",
        {
            "mode": "copy",
            "source": PROD,
            "target": {
                "api_url": "https://stg.example.com",
                "db": ["db.stg.example.com", 6543, "stgdb"],
                "store": 8,
            },
            "strategy": "auto",
        },
    ),
    "copy_mapped": (
        "5da4b0423c8f24a929c119d8667ab29f",
        {
            "mode": "copy",
            "source": {"api_url": "http://127.0.0.1:9000", "db": ["prod-maint.rebotics.net", 5432, "prod"]},
            "target": {**STG_DEFAULT, "store": 31},
            "strategy": "mapped",
        },
    ),
    "download": (
        "4d26e676f132dfc7118428ab14e9e42e",
        {
            "mode": "download",
            "source": {"api_url": "https://prod.rebotics.net", "db": ["10.0.0.5", 5433, "prod_db"]},
            "output": "/scanjobs-pinned/images",
        },
    ),
    "analyze": (
        "3367e9c9a458d1860924998702a4da3f",
        {
            "mode": "analyze",
            "source": PROD,
            "target": {
                "api_url": "https://stg.example.com",
                "db": ["stg-maint.rebotics.net", 5432, "stg"],
                "store": None,
            },
        },
    ),
    "analyze_store": (
        "1c3e9db39cefe8c53b72efa826acc2d3",
        {"mode": "analyze", "source": PROD, "target": {**STG_DEFAULT, "store": 9}},
    ),
}
TYPES = {"copy": CopyJob, "download": DownloadJob, "analyze": AnalyzeJob}


def load_sample(tmp_path: Path, name: str) -> CopyJob | DownloadJob | AnalyzeJob:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(SAMPLES[name]))
    return load_job(path, environ={})


@pytest.mark.skipif(Path("/scanjobs-pinned").resolve() != Path("/scanjobs-pinned"), reason="POSIX paths")
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_fingerprint_is_what_existing_state_files_recorded(tmp_path: Path, name: str) -> None:
    job = load_sample(tmp_path, name)
    fingerprint, fields = PINNED[name]
    assert job.fingerprint_fields() == fields
    assert list(job.fingerprint_fields()) == list(fields)  # the same keys, in the same order
    assert job.fingerprint() == fingerprint


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_mode_chooses_the_job_type(tmp_path: Path, name: str) -> None:
    job = load_sample(tmp_path, name)
    assert type(job) is TYPES[job.mode]
    assert dataclasses.is_dataclass(job)
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.name = "other"  # type: ignore[misc]


def test_each_mode_has_only_its_sections(tmp_path: Path) -> None:
    copy = load_sample(tmp_path, "copy_mapped")
    assert isinstance(copy, CopyJob)
    assert copy.target.store == 31 and copy.target.instance.name == "stg"
    assert copy.copy.strategy == "mapped" and copy.copy.captured_at == "source"
    assert copy.analysis.enabled and copy.batch.size == 3
    assert not hasattr(copy, "download")
    assert [i.name for i in copy.instances()] == ["prod", "stg"]

    download = load_sample(tmp_path, "download")
    assert isinstance(download, DownloadJob)
    assert download.download.section_max_length == 40
    for absent in ("target", "copy", "analysis"):
        assert not hasattr(download, absent), absent
    assert [i.name for i in download.instances()] == ["prod"]

    analyze = load_sample(tmp_path, "analyze_store")
    assert isinstance(analyze, AnalyzeJob)
    assert analyze.target.instance.name == "stg" and not hasattr(analyze.target, "store")
    assert analyze.target_store_as_written == 9
    for absent in ("copy", "download"):
        assert not hasattr(analyze, absent), absent
    assert [i.name for i in analyze.instances()] == ["prod", "stg"]


def test_every_job_has_the_common_attributes(tmp_path: Path) -> None:
    for name in SAMPLES:
        job = load_sample(tmp_path, name)
        for attr in ("path", "name", "mode", "source", "scans", "output", "batch", "retry", "version"):
            assert hasattr(job, attr), (name, attr)
        assert job.state_path == tmp_path / f"{name}.state.sqlite"
        assert job.log_path == tmp_path / f"{name}.state.log"
        assert job.version == 1


def test_sections_a_mode_does_not_use_are_still_checked(tmp_path: Path) -> None:
    """The schema admits copy/analysis/download in every mode: still validated, then dropped."""
    text = SAMPLES["download"].replace(
        "download: {section_max_length: 40}",
        "download: {section_max_length: 40}\n        copy: {strategy: mapped}\n"
        "        analysis: {wait_for_processing: 5m}",
    )
    (tmp_path / "d.yaml").write_text(textwrap.dedent(text))
    job = load_job(tmp_path / "d.yaml", environ={})
    assert isinstance(job, DownloadJob) and not hasattr(job, "copy")
    bad = text.replace("strategy: mapped", "strategy: guessed")
    (tmp_path / "d.yaml").write_text(textwrap.dedent(bad))
    with pytest.raises(JobError, match="copy.strategy"):
        load_job(tmp_path / "d.yaml", environ={})


def test_job_is_the_union_of_the_mode_types() -> None:
    assert jobfile_pkg.Job is jobfile_model.Job
    assert set(jobfile_model.Job.__args__) == {CopyJob, DownloadJob, AnalyzeJob, CompareJob}

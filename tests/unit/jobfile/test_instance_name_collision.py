"""Two instance names whose default secret variables would be the same are refused."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from scanjobs.errors import JobError
from scanjobs.jobfile import load_job


def test_source_and_target_that_would_share_secret_variables_are_refused(tmp_path: Path) -> None:
    """a-b and a_b both read A_B_PASSWORD: the copy would log in to both with one password."""
    job = tmp_path / "job.yaml"
    job.write_text(
        textwrap.dedent("""\
        version: 1
        mode: copy
        source: a-b
        target: {instance: a_b, store: 1}
        scans: {ids: [1]}
        instances: {a-b: {}, a_b: {}}
        """)
    )
    with pytest.raises(JobError, match="would share their secrets' variables"):
        load_job(job, environ={})

"""A refusal names a value without echoing all of it: a text of thousands of characters where a
number, a key or a name belongs is shown cut short, with its length, in every message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from scanjobs.errors import JobError
from scanjobs.jobfile import load_job

LONG = "1" * 5000 + ".5e3"
JOB: dict[str, Any] = {
    "version": 1,
    "mode": "copy",
    "source": "a",
    "target": {"instance": "b", "store": 8},
    "scans": {"ids": [1]},
    "instances": {"a": {}, "b": {}},
}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda job: job["batch"].update(size=LONG), "batch.size"),  # a text where a number belongs
        (lambda job: job["batch"].update({"x" * 5000: 1}), "unknown key"),  # an unknown key
        (lambda job: job["copy"].update(strategy="y" * 5000), "copy.strategy"),  # not one of the choices
        (lambda job: job["instances"].update({"z" * 5000: {"api_url": 5}}), "api_url"),  # under a long key
    ],
)
def test_a_long_value_is_shown_cut_short(tmp_path: Path, change: Any, named: str) -> None:
    job = json.loads(json.dumps(JOB)) | {"batch": {}, "copy": {}}
    change(job)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))  # a key over 1024 characters written as an explicit key
    with pytest.raises(JobError) as refused:
        load_job(path)
    text = str(refused.value)
    assert named in text and "characters)" in text
    assert max(len(line) for line in text.splitlines()) < 400, text[:1000]

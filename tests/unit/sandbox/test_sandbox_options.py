"""The sandbox's start options and their command-line form."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from scanjobs.sandbox.options import SandboxOptions, add_arguments, options_from_args


def test_forget_uids_after_is_a_start_option(tmp_path: Path) -> None:
    """Issue 13, point 5: `sandbox up --forget-uids-after SECONDS` (the crash tests' forgetful
    sandbox starts with it)."""
    options = SandboxOptions(dir=tmp_path, forget_uids_after=1.5)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parsed = options_from_args(parser.parse_args(options.to_argv()))
    assert parsed == options and parsed.forget_uids_after == 1.5
    assert SandboxOptions(dir=tmp_path).forget_uids_after is None  # remembered for ever, by default
    with pytest.raises(SystemExit):
        parser.parse_args(["--dir", str(tmp_path), "--forget-uids-after", "-1"])

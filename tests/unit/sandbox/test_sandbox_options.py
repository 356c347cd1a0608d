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


def _parse(argv: list[str]) -> SandboxOptions:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser)
    return options_from_args(parser.parse_args(argv))


def test_without_column_round_trips_and_applies_per_instance(tmp_path: Path) -> None:
    """issue 13, point 10: the sandbox can play a platform whose schema lacks a column."""
    options = SandboxOptions(
        dir=tmp_path,
        without_column=("target:t1.a", "t1.b", "source:t2", "t3.c", "t3"),
    )
    assert _parse(options.to_argv()) == options
    assert options.hidden("target") == {"t1": {"a", "b"}, "t3": None}
    assert options.hidden("source") == {"t1": {"b"}, "t2": None, "t3": None}
    assert SandboxOptions(dir=tmp_path).hidden("source") == {}
    assert "--without-column" not in SandboxOptions(dir=tmp_path).to_argv()


@pytest.mark.parametrize("bad", ["both:t.c", "t.c.d", "T.c", "t;drop", "", "target:"])
def test_without_column_refuses_what_is_not_a_table_or_column(tmp_path: Path, bad: str) -> None:
    with pytest.raises(argparse.ArgumentError):
        _parse(["--dir", str(tmp_path), "--without-column", bad])

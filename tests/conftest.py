"""Session fixtures shared by every test suite: the sandbox (started lazily, once)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from events_contract import check_lines
from hypothesis import settings

from scanjobs.events import EVENTS_TEE
from scanjobs.sandbox import Sandbox
from scanjobs.sandbox.faults import SCRIPTED_API, SCRIPTED_STORAGE, SCRIPTED_UPLOAD

# No per-example time limit: hypothesis' default deadline (200 ms) is a timed assertion, which a
# loaded machine fails by luck (pandas and openpyxl examples take longer under load).
settings.register_profile("scanjobs", deadline=None)
settings.load_profile("scanjobs")


# Every event the suite's runs emit (in this process and in the scanjobs processes it starts,
# which inherit the variable), whatever their console shows, is copied as its --json line into one
# folder and checked against the documented contract (scanjobs.events.EVENTS) when the session
# ends: a mismatch fails the session.
def pytest_configure(config: pytest.Config) -> None:
    if EVENTS_TEE not in os.environ:
        os.environ[EVENTS_TEE] = tempfile.mkdtemp(prefix="scanjobs-events-")
        config.stash[_TEE_KEY] = Path(os.environ[EVENTS_TEE])


_TEE_KEY = pytest.StashKey[Path]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    folder = session.config.stash.get(_TEE_KEY, None)
    if folder is None:
        return
    lines = [line for f in sorted(folder.glob("*.jsonl")) for line in f.read_text("utf-8").splitlines()]
    problems = check_lines(lines)
    shutil.rmtree(folder, ignore_errors=True)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")
        reporter.write_sep(
            "-", f"--json events contract: {len(lines)} line(s) checked, {len(problems)} problem(s)"
        )
        for problem in problems[:50]:
            reporter.write_line(f"  {problem}", red=True)
    if problems:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def sandbox_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Sandbox]]:
    """Start extra sandboxes with other options; all are stopped at the end of the session."""
    started: list[Sandbox] = []

    def start(**options: Any) -> Sandbox:
        sb = Sandbox(Path(tmp_path_factory.mktemp("sandbox")), **options)
        started.append(sb)
        return sb.start()

    yield start
    for sb in reversed(started):
        sb.stop()


@pytest.fixture(scope="session")
def sandbox(sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    """The shared sandbox: 40 scans of 3 files, fast processing, an imperfect MA."""
    return sandbox_factory(scans=40, files_per_scan=3, processing_delay=0.5, ma_accuracy=0.6, seed=7)


@pytest.fixture
def scripted(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The shared sandbox for tests that script faults: none is left armed for the next test."""
    try:
        yield sandbox
    finally:
        sandbox.configure(**dict.fromkeys((*SCRIPTED_UPLOAD, *SCRIPTED_STORAGE, *SCRIPTED_API), 0))

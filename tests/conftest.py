"""Session fixtures shared by every test suite: the sandbox (started lazily, once)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from scanjobs.sandbox import Sandbox
from scanjobs.sandbox.faults import SCRIPTED_API, SCRIPTED_STORAGE, SCRIPTED_UPLOAD

# No per-example time limit: hypothesis' default deadline (200 ms) is a timed assertion, which a
# loaded machine fails by luck (pandas and openpyxl examples take longer under load).
settings.register_profile("scanjobs", deadline=None)
settings.load_profile("scanjobs")


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

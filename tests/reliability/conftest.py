"""Fixtures of the reliability tests: a sandbox that forgets request uids (issue 13, point 5)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from scanjobs.sandbox import Sandbox


@pytest.fixture(scope="session")
def forgetful_sandbox(sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    """A sandbox started to forget every request uid as soon as it has answered it: a rerun can
    then never get a scan or a file back by its uid."""
    return sandbox_factory(scans=6, files_per_scan=3, processing_delay=0.5, seed=11, forget_uids_after=0)

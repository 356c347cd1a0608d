"""The job's log file: a write it cannot make (disk full) is said once, not a traceback per event."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import resource, sys
from pathlib import Path
from scanjobs.events import LogSink
sink = LogSink(Path(sys.argv[1]))
resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))
for _ in range(20):
    sink.handle("info", {"message": "x" * 60})
print("went on")
"""


def test_a_log_that_cannot_be_written_is_said_once_and_the_run_goes_on(tmp_path: Path) -> None:
    """Issue 12, point 1 (a sibling): a full disk fails the log's writes too."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "job.log")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "went on"
    assert done.stderr.count("cannot write the log") == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr

"""A local twin of the scan platform: embedded PostgreSQL, the HTTP API, simulated processing."""

from scanjobs.sandbox.harness import Sandbox
from scanjobs.sandbox.options import SandboxOptions, add_arguments, options_from_args
from scanjobs.sandbox.server import run_up

__all__ = ["Sandbox", "SandboxOptions", "add_arguments", "options_from_args", "run_up"]

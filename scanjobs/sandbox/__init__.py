"""A local twin of the platform: embedded PostgreSQL, the HTTP API, simulated processing."""

from scanjobs.sandbox.control import describe, describe_lines, down
from scanjobs.sandbox.folder import SandboxError, SandboxFolder
from scanjobs.sandbox.harness import Sandbox
from scanjobs.sandbox.options import SandboxOptions, add_arguments, options_from_args
from scanjobs.sandbox.server import run_up

__all__ = [
    "Sandbox",
    "SandboxError",
    "SandboxFolder",
    "SandboxOptions",
    "add_arguments",
    "describe",
    "describe_lines",
    "down",
    "options_from_args",
    "run_up",
]

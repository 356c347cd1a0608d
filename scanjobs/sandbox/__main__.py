"""`python -m scanjobs.sandbox up --dir DIR ...`: the sandbox without the main CLI."""

from __future__ import annotations

import argparse
import sys

from scanjobs.sandbox.options import add_arguments, options_from_args
from scanjobs.sandbox.server import run_up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scanjobs.sandbox")
    commands = parser.add_subparsers(dest="command", required=True)
    add_arguments(commands.add_parser("up", help="run the sandbox until SIGINT/SIGTERM"))
    return run_up(options_from_args(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())

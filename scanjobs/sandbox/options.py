"""The sandbox's options: a dataclass and its command-line form."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, fields
from pathlib import Path

# [INSTANCE:]TABLE[.COLUMN], lower-case identifiers as Django makes them
_HIDDEN = re.compile(r"(?:(source|target):)?([a-z_][a-z0-9_]*)(?:\.([a-z_][a-z0-9_]*))?")


@dataclass(frozen=True)
class SandboxOptions:
    """How to start a sandbox (see `scanjobs sandbox up --help`)."""

    dir: Path
    scans: int = 20
    files_per_scan: int = 2
    file_bytes: int | None = None
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    processing_delay: float = 2.0
    ma_accuracy: float = 0.9
    seed: int = 1
    port_base: int = 0
    hang_seconds: float = 15.0
    link_lifetime: float = 3600.0
    keep_data: bool = False
    new_ports: bool = False
    forget_uids_after: float | None = None  # None: request uids are remembered for ever
    without_column: tuple[str, ...] = ()  # [INSTANCE:]TABLE[.COLUMN], hidden from the db user

    def to_argv(self) -> list[str]:
        """The `up` arguments that reproduce these options."""
        argv = ["--dir", str(self.dir)]
        for f in fields(self):
            value = getattr(self, f.name)
            flag = f"--{f.name.replace('_', '-')}"
            if isinstance(value, bool):
                argv += [flag] if value else []
            elif isinstance(value, tuple):
                argv += [part for item in value for part in (flag, str(item))]
            elif f.name != "dir" and value is not None:
                argv += [flag, str(value)]
        return argv

    def hidden(self, instance: str) -> dict[str, set[str] | None]:
        """What `--without-column` hides on `instance`: table -> its hidden columns (None: the
        whole table)."""
        out: dict[str, set[str] | None] = {}
        for item in self.without_column:
            only, table, column = hidden_column(item)
            if only not in (None, instance):
                continue
            hidden = out.get(table, set())
            out[table] = None if column is None or hidden is None else hidden | {column}
        return out

    def seeded_with(self) -> dict[str, object]:
        """The options that decide what the databases are seeded with."""
        return {
            "scans": self.scans,
            "files_per_scan": self.files_per_scan,
            "file_bytes": self.file_bytes,
            "seed": self.seed,
        }


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds (0 or more)")
    return value


def _port_base(text: str) -> int:
    value = int(text)
    if value != 0 and not 1024 <= value <= 65533:
        raise argparse.ArgumentTypeError(f"{text}: give 0 (free ports) or a port from 1024 to 65533")
    return value


def hidden_column(text: str) -> tuple[str | None, str, str | None]:
    """`[INSTANCE:]TABLE[.COLUMN]` as (instance or None for both, table, column or None)."""
    match = _HIDDEN.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give [source:|target:]TABLE[.COLUMN], "
            "e.g. target:planograms_implementation_planogramsection.name"
        )
    return match.group(1), match.group(2), match.group(3)


def _hidden_column(text: str) -> str:
    hidden_column(text)
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `--dir` and every sandbox option to `parser`."""
    parser.add_argument("--dir", type=Path, required=True, help="data directory (created)")
    parser.add_argument("--scans", type=int, default=20, help="processed source scans (20)")
    parser.add_argument("--files-per-scan", type=int, default=2, help="files per scan (2)")
    parser.add_argument(
        "--file-bytes",
        type=int,
        default=None,
        help="pad each image to this size (default: small real images)",
    )
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="per-request latency, jittered 0.5x-1.5x (0)"
    )
    parser.add_argument(
        "--fault-rate",
        type=_fraction,
        default=0.0,
        help="fraction of requests answered with a transient fault (0)",
    )
    parser.add_argument(
        "--processing-delay", type=float, default=2.0, help="seconds until a created scan is done (2)"
    )
    parser.add_argument(
        "--ma-accuracy",
        type=_fraction,
        default=0.9,
        help="probability the simulated MA maps a scan like the source (0.9)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed for data and faults (1)")
    parser.add_argument(
        "--port-base",
        type=_port_base,
        default=0,
        help="source API port; target +1, PostgreSQL +2 (0: the ports DIR kept from its last start, "
        "or free ones at the first)",
    )
    parser.add_argument(
        "--new-ports",
        action="store_true",
        help="take free ports instead of those DIR kept (jobs written against the old ones must be "
        "pointed at the new: scanjobs init ... --sandbox DIR --force)",
    )
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="keep the databases and files of the last start (same --scans, --files-per-scan, "
        "--file-bytes and --seed) instead of seeding them afresh",
    )
    parser.add_argument(
        "--hang-seconds", type=float, default=15.0, help="how long a 'hang' fault stalls a GET (15)"
    )
    parser.add_argument(
        "--link-lifetime",
        type=float,
        default=3600.0,
        help="seconds a signed storage link is good for; an expired one answers 403 (3600)",
    )
    parser.add_argument(
        "--forget-uids-after",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="forget a REB-CLIENT-REQUEST-UID this long after answering it, as a platform may "
        "(default: never)",
    )
    parser.add_argument(
        "--without-column",
        type=_hidden_column,
        action="append",
        default=[],
        metavar="[INSTANCE:]TABLE[.COLUMN]",
        help="as if the platform's schema lacked this column (or table), on one instance or both: "
        "the read-only database user (what scanjobs connects as) cannot see it, while the "
        "sandbox itself still uses it (repeatable)",
    )


def options_from_args(ns: argparse.Namespace) -> SandboxOptions:
    """The options parsed by a parser prepared with `add_arguments`."""
    values = {f.name: getattr(ns, f.name) for f in fields(SandboxOptions)}
    values["without_column"] = tuple(values["without_column"])
    return SandboxOptions(**values)

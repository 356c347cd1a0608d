"""The HTTP API of one sandbox instance (aiohttp): docs/platform.md's endpoints plus /_sandbox/ controls.

`ROUTES` is the whole surface: each row names the `Handlers` method that answers it.
"""

from __future__ import annotations

import random

from aiohttp import web

from scanjobs.sandbox.faults import fault_middleware
from scanjobs.sandbox.handlers import Handlers
from scanjobs.sandbox.instance import Instance, MemoryStorage, Pool

__all__ = ["ROUTES", "Instance", "MemoryStorage", "Pool", "build_app"]

# (method, path, Handlers method). A GET also answers HEAD. Rows of one path stay adjacent:
# aiohttp then serves them from one resource (one route name in the statistics).
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("POST", "/api/v4/token-auth/", "token_auth"),
    ("GET", "/api/v1/master-data/file-upload/{id}/", "file_meta"),
    ("GET", "/_storage/{path:.+}", "storage"),
    ("POST", "/api/v4/processing/upload/", "upload"),
    ("POST", "/api/v4/processing/actions/", "create_action"),
    ("GET", "/api/v4/processing/actions/{id}/", "action_detail"),
    ("GET", "/_sandbox/outbox", "outbox"),
    ("GET", "/_sandbox/stats", "stats"),
    ("POST", "/_sandbox/stats/reset", "stats_reset"),
    ("GET", "/_sandbox/config", "config"),
    ("POST", "/_sandbox/config", "config"),
    ("POST", "/_sandbox/stores", "new_store"),
    ("POST", "/_sandbox/sections/{id}", "rename_section"),
)


def build_app(inst: Instance) -> web.Application:
    """The aiohttp application of one instance."""
    # Seeded by text: hash() of a str changes with every process (PYTHONHASHSEED).
    faults = random.Random(f"faults {inst.seed} {inst.name}")
    app = web.Application(
        middlewares=[fault_middleware(inst.config, inst.stats, faults)],
        client_max_size=1024**3,
    )
    (inst.storage / "tmp").mkdir(parents=True, exist_ok=True)  # large uploads land here first
    (inst.storage / "uploads").mkdir(parents=True, exist_ok=True)
    handlers = Handlers(inst)
    for method, path, name in ROUTES:
        add = app.router.add_get if method == "GET" else app.router.add_post
        add(path, getattr(handlers, name))
    return app

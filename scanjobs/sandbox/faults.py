"""Runtime config, request statistics, and the middleware injecting latency and transient faults."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

CONTROL_PREFIX = "/_sandbox/"
FAULTS_ANY = ("502", "503", "429", "reset")
FAULTS_GET = (*FAULTS_ANY, "hang")  # only reads may hang: a hung write would look half-done


@dataclass
class RuntimeConfig:
    """What `POST /_sandbox/config` may change while the sandbox runs (shared by both instances)."""

    fault_rate: float = 0.0
    latency_ms: float = 0.0
    processing_delay: float = 2.0
    ma_accuracy: float = 0.9
    hang_seconds: float = 15.0

    def update(self, values: dict[str, Any]) -> None:
        """Apply the known keys (as floats), rejecting anything else."""
        for key, value in values.items():
            if key not in asdict(self):
                raise ValueError(f"unknown config key {key!r}")
            setattr(self, key, float(value))

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class Stats:
    """Request counts of one instance (control endpoints excluded)."""

    requests: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    faults_injected: int = 0
    scans_created: int = 0
    files_uploaded: int = 0

    def as_dict(self) -> dict[str, Any]:
        rows = [
            {"method": m, "route": r, "status": s, "count": c}
            for (m, r, s), c in sorted(self.requests.items())
        ]
        return {
            "requests": rows,
            "requests_total": sum(self.requests.values()),
            "faults_injected": self.faults_injected,
            "scans_created": self.scans_created,
            "files_uploaded": self.files_uploaded,
        }

    def reset(self) -> None:
        self.requests.clear()
        self.faults_injected = self.scans_created = self.files_uploaded = 0


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "<unmatched>"


def fault_middleware(config: RuntimeConfig, stats: Stats, rng: random.Random) -> Any:
    """Count every API/storage request; delay it; answer a fraction with a transient fault.

    Faults are decided before the handler runs, so a faulted request never changes state and
    a client retry is always safe. A connection reset is counted with status 0.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)  # type: ignore[no-any-return]
        key = (request.method, _route(request))
        status = 500
        try:
            if config.latency_ms > 0:
                await asyncio.sleep(config.latency_ms / 1000 * rng.uniform(0.5, 1.5))
            fault = None
            if rng.random() < config.fault_rate:
                fault = rng.choice(FAULTS_GET if request.method == "GET" else FAULTS_ANY)
                stats.faults_injected += 1
            if fault == "reset":
                status = 0
                if request.transport is not None:
                    request.transport.abort()
                raise asyncio.CancelledError  # nothing can be answered on an aborted transport
            if fault == "hang":
                await asyncio.sleep(config.hang_seconds)
            elif fault in ("502", "503"):
                status = int(fault)
                return web.json_response(
                    {"detail": "Bad gateway" if status == 502 else "Service unavailable"}, status=status
                )
            elif fault == "429":
                status = 429
                return web.json_response(
                    {"detail": "Request was throttled."}, status=429, headers={"Retry-After": "1"}
                )
            response: web.StreamResponse = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            stats.requests[(key[0], key[1], status)] += 1

    return middleware

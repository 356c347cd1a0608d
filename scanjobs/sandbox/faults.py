"""Runtime config, request statistics, and the middleware injecting latency and transient faults."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

CONTROL_PREFIX = "/_sandbox/"
FAULTS_ANY = ("502", "503", "429", "reset")
FAULTS_GET = (*FAULTS_ANY, "hang")  # only reads may hang: a hung write would look half-done
UPLOAD_ROUTE = "/api/v4/processing/upload/"
STORAGE_ROUTE = "/_storage/{path}"
# Scripted faults, by the requests they apply to: each is a count in RuntimeConfig of how many of
# the next such requests take it. Unlike the random faults, these act *after* the platform did its
# work, or answer in ways a careless client takes for a good answer.
SCRIPTED_UPLOAD = ("upload_stored_then_reset", "upload_stored_then_502", "upload_stored_then_504")
SCRIPTED_STORAGE = ("storage_cut_short", "storage_too_long", "storage_drip")
SCRIPTED_API = ("api_drip",)
TOO_LONG_EXTRA = 1 << 20  # bytes of junk after the file in a `storage_too_long` answer


@dataclass
class RuntimeConfig:
    """What `POST /_sandbox/config` may change while the sandbox runs (shared by both instances)."""

    fault_rate: float = 0.0
    latency_ms: float = 0.0
    processing_delay: float = 2.0
    ma_accuracy: float = 0.9
    hang_seconds: float = 15.0
    # Seconds a request uid is remembered once answered (negative: for ever). Nothing public says
    # how long the platform remembers one: a client must not count on a replay long after.
    forget_uids_after: float = -1.0
    # The scripted faults (counts of the next requests to take each; see SCRIPTED_*):
    upload_stored_then_reset: float = 0  # the upload is stored, then the connection drops unanswered
    upload_stored_then_502: float = 0  # the upload is stored, then a proxy answers 502
    upload_stored_then_504: float = 0  # the upload is stored, then a proxy answers 504
    storage_cut_short: float = 0  # a storage answer with no Content-Length ends halfway, cleanly
    storage_too_long: float = 0  # a storage answer with no Content-Length runs on past the file
    storage_drip: float = 0  # a storage answer's body comes a byte per drip_seconds, forever
    api_drip: float = 0  # an API answer's headers come a byte per drip_seconds, forever
    drip_seconds: float = 0.2
    # Storage links are signed and expire, as S3's and Azure's do (an expired one answers 403):
    link_lifetime: float = 3600.0  # seconds a link from the file metadata is good for
    expired_links: float = 0  # how many of the next file-metadata answers give a link already expired

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
    checksums_verified: int = 0  # uploads stored whose `checksum` was given (and matched)
    # Arrivals, counted as each request comes in (before the latency or any fault), so that a
    # client's request rate shows as it sent it: the wall-clock time of the first, and the count
    # per whole second (time.time(), floored).
    first_request_at: float | None = None
    per_second: Counter[int] = field(default_factory=Counter)

    def arrived(self, now: float) -> None:
        """Count one request arriving at wall-clock time `now`."""
        if self.first_request_at is None:
            self.first_request_at = now
        self.per_second[int(now)] += 1

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
            "checksums_verified": self.checksums_verified,
            "first_request_at": self.first_request_at,
            # JSON object keys are text: the harness turns them back into ints
            "per_second": {str(second): n for second, n in sorted(self.per_second.items())},
            "max_per_second": max(self.per_second.values(), default=0),
        }

    def reset(self) -> None:
        self.requests.clear()
        self.per_second.clear()
        self.first_request_at = None
        self.faults_injected = self.scans_created = self.files_uploaded = self.checksums_verified = 0


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "<unmatched>"


def _scripted(config: RuntimeConfig, method: str, route: str) -> str | None:
    """The scripted fault this request takes, if one is due (its count goes down by one)."""
    names: tuple[str, ...]
    if route == UPLOAD_ROUTE and method == "POST":
        names = SCRIPTED_UPLOAD
    elif route == STORAGE_ROUTE:
        names = SCRIPTED_STORAGE
    else:
        names = SCRIPTED_API
    for name in names:
        left = getattr(config, name)
        if left >= 1:
            setattr(config, name, left - 1)
            return name
    return None


async def _send_raw(request: web.Request, data: bytes, drip: float | None = None) -> None:
    """Write `data` straight to the connection, then, with `drip`, a byte every `drip` seconds
    until the client hangs up: a server that is never done and never silent for long."""
    transport = request.transport
    if transport is None:
        return
    transport.write(data)
    while drip is not None and not transport.is_closing():
        await asyncio.sleep(drip)
        transport.write(b"a")


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1")


async def _scripted_answer(
    fault: str, request: web.Request, handler: Any, config: RuntimeConfig
) -> web.StreamResponse | None:
    """Answer with the scripted `fault`; None when nothing could be answered (the connection
    is gone or going). A fault the answer does not allow (a large file streamed from disk)
    passes the real answer through."""
    if fault == "api_drip":
        await _send_raw(request, b"HTTP/1.1 200 OK\r\nX-Sandbox-Drip: ", drip=config.drip_seconds)
        return None
    response: web.StreamResponse = await handler(request)  # the platform does its work first
    if fault == "upload_stored_then_reset":
        if request.transport is not None:
            request.transport.abort()
        return None
    if fault in ("upload_stored_then_502", "upload_stored_then_504"):
        status = int(fault[-3:])
        detail = "Bad gateway" if status == 502 else "Gateway timeout"
        return web.json_response({"detail": detail}, status=status)
    body = response.body if isinstance(response, web.Response) else None
    if response.status != 200 or not isinstance(body, bytes):
        return response
    # No Content-Length and `Connection: close`: the body ends where the connection does.
    head = _head("200 OK", {"Content-Type": response.content_type, "Connection": "close"})
    if fault == "storage_cut_short":
        await _send_raw(request, head + body[: len(body) // 2])
    elif fault == "storage_too_long":
        await _send_raw(request, head + body + b"\0" * TOO_LONG_EXTRA)
    else:  # storage_drip
        await _send_raw(request, head + body[:1], drip=config.drip_seconds)
    return None


def fault_middleware(config: RuntimeConfig, stats: Stats, rng: random.Random) -> Any:
    """Count every API/storage request; delay it; answer a fraction with a transient fault.

    Random faults are decided before the handler runs, so a faulted request never changes state
    and a client retry is always safe. Scripted faults (RuntimeConfig's counts) are the opposite
    cases: the platform acted but its answer was lost, or an answer is cut, too long or endless.
    A request left without a whole answer is counted with status 0.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)  # type: ignore[no-any-return]
        stats.arrived(time.time())
        key = (request.method, _route(request))
        status = 500
        try:
            if config.latency_ms > 0:
                await asyncio.sleep(config.latency_ms / 1000 * rng.uniform(0.5, 1.5))
            scripted = _scripted(config, *key)
            if scripted is not None:
                stats.faults_injected += 1
                status = 0
                answer = await _scripted_answer(scripted, request, handler, config)
                if answer is None:
                    raise asyncio.CancelledError  # nothing more can be answered on this connection
                status = answer.status
                return answer
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

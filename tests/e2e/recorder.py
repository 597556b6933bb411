"""A tiny platform stand-in that records the headers of every request (the local platform shows none).

It answers `GET /agent-execution/{task_id}/status` with a minimal task, over plain HTTP or, given an SSL
context, HTTPS: enough for GetTask to travel the bridge's whole upstream path.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

__all__ = ["Recorder", "recording_platform"]


@dataclass
class Recorder:
    """Where the stand-in listens and the headers (lower-cased names) of each request it answered."""

    url: str
    headers: list[dict[str, str]] = field(default_factory=list)


@asynccontextmanager
async def recording_platform(ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Recorder]:
    """Serve the stand-in on 127.0.0.1:0 for the block."""
    seen: list[dict[str, str]] = []

    async def task_status(request: web.Request) -> web.Response:
        seen.append({name.lower(): value for name, value in request.headers.items()})
        task = {
            "id": request.match_info["task_id"],
            "agent_id": "recorded-agent",
            "organization_id": "recorded-org",
            "input": {},
            "created_at": "2026-01-01T00:00:00Z",
        }
        return web.json_response(task)

    app = web.Application()
    app.router.add_get("/agent-execution/{task_id}/status", task_status)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    scheme = "https" if ssl_context is not None else "http"
    try:
        yield Recorder(url=f"{scheme}://127.0.0.1:{runner.addresses[0][1]}", headers=seen)
    finally:
        await runner.cleanup()

"""HTTP clients side by side on one core: the create-task POST at a given concurrency, closed loop.

Kinds: `httpx` (httpx's own pool, as the platform client uses it), `bridge-aiohttp` (httpx on
`bridge.platform.transport.AiohttpTransport`), `httpx-aiohttp` (httpx on the `httpx-aiohttp` package's
transport), `aiohttp` (aiohttp's own client, no httpx). `--idle-streams N` first opens N idle SSE streams
(`idle-<i>` tasks) either on the same client (`--streams-pool shared`) or on a second one (`separate`), to
show what long-lived streams in the unary pool cost.

Run: `python -m bench.http_clients --kind httpx --url http://127.0.0.1:PORT --concurrency 100`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from bench.loadloop import closed_loop
from bench.loops import LOOPS, LoopKind, run

__all__ = ["main"]

_ERRORS = (httpx.HTTPError, aiohttp.ClientError, OSError)


def _httpx_client(kind: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    if kind == "bridge-aiohttp":
        from bridge.platform.transport import AiohttpTransport

        return httpx.AsyncClient(transport=AiohttpTransport(max_connections=connections), timeout=60)
    if kind == "httpx-aiohttp":
        from httpx_aiohttp import AiohttpTransport as PackageTransport

        return httpx.AsyncClient(transport=PackageTransport(limits=limits), timeout=60)
    return httpx.AsyncClient(limits=limits, timeout=60)


@asynccontextmanager
async def _idle_streams(client: httpx.AsyncClient, url: str, count: int) -> AsyncIterator[None]:
    """`count` SSE streams held open on `client` for the duration of the block."""
    async with AsyncExitStack() as stack:
        for i in range(count):
            response = await stack.enter_async_context(
                client.stream("GET", f"{url}/local-org/agent-execution/idle-{i}/events")
            )
            await response.aiter_bytes().__anext__()
        yield


async def _measure(args: argparse.Namespace, body: bytes) -> dict[str, Any]:
    url = f"{args.url}/agent-execution/demo-agent"
    headers = {"content-type": "application/json", "x-api-key": "bench-key"}
    if args.kind == "aiohttp":
        connector = aiohttp.TCPConnector(limit=args.connections)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def post_aiohttp() -> object:
                async with session.post(url, data=body, headers=headers) as response:
                    return await response.read()

            await post_aiohttp()
            return await closed_loop(post_aiohttp, args.requests, args.concurrency, _ERRORS, args.max_seconds)
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(_httpx_client(args.kind, args.connections))
        if args.idle_streams:
            holder = client
            if args.streams_pool == "separate":
                holder = await stack.enter_async_context(
                    httpx.AsyncClient(limits=httpx.Limits(max_connections=None), timeout=None)
                )
            await stack.enter_async_context(_idle_streams(holder, args.url, args.idle_streams))

        async def post() -> object:
            response = await client.post(url, content=body, headers=headers)
            return response.content

        await post()
        return await closed_loop(post, args.requests, args.concurrency, _ERRORS, args.max_seconds)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bench.http_clients`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--kind", choices=("httpx", "bridge-aiohttp", "httpx-aiohttp", "aiohttp"), required=True
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True, help="file with the JSON create body")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument(
        "--max-seconds", type=float, default=10.0, help="closed loop: start no call after this"
    )
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--idle-streams", type=int, default=0)
    parser.add_argument("--streams-pool", choices=("shared", "separate"), default="shared")
    parser.add_argument("--loop", choices=LOOPS, default="asyncio")
    args = parser.parse_args(argv)
    loop: LoopKind = args.loop
    result = run(_measure(args, Path(args.body).read_bytes()), loop)
    result.update(kind=args.kind, idle_streams=args.idle_streams, streams_pool=args.streams_pool)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

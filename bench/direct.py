"""Baseline (a): the bridge's own upstream client (`PlatformClient`) calling the upstream directly.

It does what the bridge does for one CreateTask minus gRPC: the same JSON body (built once by the bridge's
own conversion), the same client, the same pool. Run pinned to the core the bridge gets, so the two compare
like for like.

Modes (one JSON document on stdout):

- `closed`: `--concurrency` workers back to back for `--requests` calls: the maximum rate.
- `open`: calls started at a fixed `--rate` for `--seconds`, whatever the outstanding ones do: latency.
- `events`: `--streams` concurrent `burst-<n>` event streams read to the end: events per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from bench.frames import create_task_request
from bench.loops import LOOPS, LoopKind, run
from bench.stats import percentiles
from bridge.convert.create import create_task_to_platform
from bridge.credentials import Credentials
from bridge.errors import BridgeError
from bridge.platform.client import PlatformClient

__all__ = ["closed_loop", "main", "open_loop"]

Call = Callable[[], Awaitable[object]]


async def closed_loop(call: Call, requests: int, concurrency: int) -> dict[str, Any]:
    """`requests` calls by `concurrency` workers back to back."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            try:
                await call()
            except (BridgeError, OSError) as error:
                errors[type(error).__name__] += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    return {
        "mode": "closed",
        "requests": requests,
        "concurrency": concurrency,
        "seconds": round(seconds, 3),
        "req_per_s": round(len(latencies) / seconds, 1),
        "ok": len(latencies),
        "errors": dict(errors),
        "latency_ms": percentiles(latencies).as_dict(),
    }


async def open_loop(call: Call, rate: float, seconds: float, warm_up: float = 1.0) -> dict[str, Any]:
    """Calls started every 1/`rate` s for `seconds` (after `warm_up` s not recorded)."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    lateness: list[float] = []

    async def one(record: bool) -> None:
        started = time.perf_counter()
        try:
            await call()
        except (BridgeError, OSError) as error:
            errors[type(error).__name__] += 1
            return
        if record:
            latencies.append((time.perf_counter() - started) * 1000)

    total = int((seconds + warm_up) * rate)
    warm = int(warm_up * rate)
    tasks: list[asyncio.Task[None]] = []
    begin = time.perf_counter()
    for i in range(total):
        due = begin + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lateness.append((time.perf_counter() - due) * 1000)
        tasks.append(asyncio.ensure_future(one(i >= warm)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - begin
    return {
        "mode": "open",
        "offered_rate": rate,
        "achieved_rate": round(total / elapsed, 1),
        "seconds": round(elapsed, 3),
        "ok": len(latencies),
        "errors": dict(errors),
        "latency_ms": percentiles(latencies).as_dict(),
        "schedule_lateness_ms": percentiles(lateness).as_dict(),
    }


async def _events(
    client: PlatformClient, creds: Credentials, streams: int, per_stream: int
) -> dict[str, Any]:
    received = 0

    async def one(i: int) -> None:
        nonlocal received
        async with client.stream_events(f"burst-{per_stream}-{i}", creds) as stream:
            async for _sequence, envelope in stream:
                received += 1
                if envelope.get("type") == "task_finished":
                    return

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(streams)))
    seconds = time.perf_counter() - started
    return {
        "mode": "events",
        "streams": streams,
        "events": received,
        "seconds": round(seconds, 3),
        "events_per_s": round(received / seconds, 1),
    }


def _swap_transport(client: PlatformClient, transport: str) -> None:
    """Replace the unary pool's transport (a measurement of the proposal in bench/transport options)."""
    if transport == "httpx":
        return
    from bridge.platform.transport import TransportKind, unary_transport

    pool = client._unary  # measuring an alternative; the client's own code path is otherwise unchanged
    kind: TransportKind = "aiohttp" if transport == "aiohttp" else "httpx"
    pool._transport = unary_transport(kind, max_connections=100)


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    base_url = args.base_url
    client = PlatformClient(base_url=base_url, events_base_url=base_url, org_in_rest_path=False)
    _swap_transport(client, args.transport)
    creds = Credentials(api_key="bench-key", organization_id=args.organization)
    call_body = create_task_to_platform(create_task_request())

    async def create() -> object:
        return await client.create_task("demo-agent", call_body.body, call_body.headers, creds)

    try:
        await create()  # open the first connection outside the measurement
        if args.mode == "closed":
            result = await closed_loop(create, args.requests, args.concurrency)
        elif args.mode == "open":
            result = await open_loop(create, args.rate, args.seconds)
        else:
            result = await _events(client, creds, args.streams, args.per_stream)
    finally:
        await client.aclose()
    result["transport"] = args.transport
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bench.direct`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("closed", "open", "events"))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--organization", default="local-org")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--per-stream", type=int, default=1000)
    parser.add_argument("--transport", default="httpx")
    parser.add_argument("--loop", choices=LOOPS, default="asyncio")
    args = parser.parse_args(argv)
    loop: LoopKind = args.loop
    print(json.dumps(run(_main(args), loop)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

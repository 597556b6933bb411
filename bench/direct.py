"""Baseline (a): the bridge's own upstream client (`PlatformClient`) calling the upstream directly.

It does what the bridge does for one CreateTask minus gRPC: the same JSON body (built once by the bridge's
own conversion), the same client, the same pool. Run pinned to the core the bridge gets, so the two compare
like for like.

Modes (one JSON document on stdout):

- `closed`: `--concurrency` workers back to back for `--requests` calls: the maximum rate.
- `open`: calls started at a fixed `--rate` for `--seconds`, whatever the outstanding ones do: latency.
- `events`: `--streams` concurrent `burst-<n>` event streams read to the end: events per second.
- `event-latency`: `--streams` `rate-<hz>-<n>` streams: upstream write -> client latency of each chunk.

Both pools run on the bridge's own transport, so the baseline moves with the bridge.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from bench.frames import create_task_request
from bench.loadloop import closed_loop, open_loop
from bench.loops import LOOPS, LoopKind, run
from bench.stats import percentiles
from bridge.convert.create import create_task_to_platform
from bridge.credentials import Credentials
from bridge.errors import BridgeError
from bridge.platform.client import PlatformClient
from bridge.platform.transport import HttpTransport

__all__ = ["main"]

_ERRORS = (BridgeError, OSError)


async def _events(client: PlatformClient, creds: Credentials, streams: int, count: int) -> dict[str, Any]:
    received = 0

    async def one(i: int) -> None:
        nonlocal received
        async with client.stream_events(f"burst-{count}-{i}", creds) as stream:
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


async def _event_latency(
    client: PlatformClient, creds: Credentials, streams: int, hz: int, count: int
) -> dict[str, Any]:
    samples: list[float] = []

    async def one(i: int) -> None:
        await asyncio.sleep(i / streams / hz)
        async with client.stream_events(f"rate-{hz}-{count}-{i}", creds) as stream:
            async for _sequence, envelope in stream:
                data = envelope.get("data")
                if isinstance(data, str) and data.startswith("t="):
                    samples.append((time.time_ns() - int(data[2:])) / 1e6)
                if envelope.get("type") == "task_finished":
                    return

    await asyncio.gather(*(one(i) for i in range(streams)))
    return {
        "mode": "event-latency",
        "streams": streams,
        "hz": hz,
        "latency_ms": percentiles(samples).as_dict(),
    }


def _client(base_url: str) -> PlatformClient:
    """The platform client on the bridge's own transports, sized like the bridge's defaults."""
    return PlatformClient(
        base_url=base_url,
        events_base_url=base_url,
        org_in_rest_path=False,
        transport=HttpTransport(max_connections=100, keepalive_expiry=4.0),
        stream_transport=HttpTransport(max_connections=10_000),
    )


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    client = _client(args.base_url)
    creds = Credentials(api_key="bench-key", organization_id=args.organization)
    call_body = create_task_to_platform(create_task_request())

    async def create() -> object:
        return await client.create_task("demo-agent", call_body.body, call_body.headers, creds)

    try:
        await create()  # the first connection opens outside the measurement
        if args.mode == "closed":
            result = await closed_loop(create, args.requests, args.concurrency, _ERRORS, args.max_seconds)
        elif args.mode == "open":
            result = await open_loop(create, args.rate, args.seconds, _ERRORS)
        elif args.mode == "events":
            result = await _events(client, creds, args.streams, args.events)
        else:
            result = await _event_latency(client, creds, args.streams, args.hz, args.events)
    finally:
        await client.aclose()
    result["loop"] = args.loop
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bench.direct`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("closed", "open", "events", "event-latency"))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--organization", default="local-org")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument(
        "--max-seconds", type=float, default=10.0, help="closed loop: start no call after this"
    )
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--hz", type=int, default=10)
    parser.add_argument("--loop", choices=LOOPS, default="asyncio")
    args = parser.parse_args(argv)
    loop: LoopKind = args.loop
    print(json.dumps(run(_main(args), loop)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Baseline (a): the bridge's own upstream client (`PlatformClient`) calling the upstream directly.

It does what the bridge does for one CreateTask minus gRPC: the same JSON body (built by the bridge's own
conversion), the same client on the bridge's transports, sized like the bridge's defaults. Run pinned to the
bridge's core, so the two compare like for like. Its one argument is a JSON document of options whose
`mode` is `closed` (the maximum rate), `open` (latency at a fixed rate) or `events` (events per second of
`burst` streams read to the end); it prints one JSON document.
"""

import asyncio
import json
import sys
import time
from typing import Any

from bench.frames import create_task_request
from bench.loadloop import closed_loop, open_loop, run
from bridge.convert.create import create_task_to_platform
from bridge.credentials import Credentials
from bridge.errors import BridgeError
from bridge.platform.client import PlatformClient
from bridge.platform.transport import HttpTransport

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
    return {"events": received, "events_per_s": round(received / (time.perf_counter() - started), 1)}


async def _main(o: dict[str, Any]) -> dict[str, Any]:
    client = PlatformClient(
        base_url=o["base_url"],
        events_base_url=o["base_url"],
        org_in_rest_path=False,
        transport=HttpTransport(max_connections=100, keepalive_expiry=4.0),
        stream_transport=HttpTransport(max_connections=10_000),
    )
    creds = Credentials(api_key="bench-key", organization_id=o["organization"])
    call = create_task_to_platform(create_task_request())

    async def create() -> object:
        return await client.create_task("demo-agent", call.body, call.headers, creds)

    try:
        await create()  # the first connection opens outside the measurement
        if o["mode"] == "closed":
            return await closed_loop(create, o["requests"], o["concurrency"], _ERRORS)
        if o["mode"] == "open":
            return await open_loop(create, o["rate"], o["seconds"], _ERRORS)
        return await _events(client, creds, o["streams"], o["events"])
    finally:
        await client.aclose()


if __name__ == "__main__":
    print(json.dumps(run(_main(json.loads(sys.argv[1])), "asyncio")), flush=True)

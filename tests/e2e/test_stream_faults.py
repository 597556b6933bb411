"""StreamEvents through a proxy that cuts the platform's event streams at random byte offsets.

Over a thousand cuts across dozens of concurrent streams (new tasks read live, continued tasks read from the
first run, from the newest and from the middle, and cuts right after `task_finished`): every stream ends OK
with exactly the events a clean read of the same task gives. The seed is printed and named in every failure;
`FAULT_SEED=<seed>` replays a run.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from typing import Any
from urllib.parse import urlsplit

import grpc
from google.protobuf import json_format

from bridge.server import BridgeServer
from tests.e2e.cutting_proxy import CuttingProxy
from tests.e2e.harness import Stack, bridge_settings, bridge_stack
from xpander.bridge.v1 import task_service_pb2, task_service_pb2_grpc

# Long enough for an answer of thirty chunks (at most one chunk per character).
LONG = "an answer long enough to be sent in thirty chunks"

Read = tuple[str, dict[str, Any]]
"""A stream to read: the task and the request's other fields."""


async def summary(stub: task_service_pb2_grpc.TaskServiceAsyncStub, read: Read) -> list[tuple[int, str, str]]:
    """Every event of one StreamEvents call that must end OK: sequence, type and payload."""
    task_id, fields = read
    call = stub.StreamEvents(task_service_pb2.StreamEventsRequest(task_id=task_id, **fields), timeout=60)
    return [
        (m.event.sequence, m.event.type_name, json_format.MessageToJson(m.event, indent=None))
        async for m in call
    ]


async def continued_task(stack: Stack) -> str:
    """A task whose first run finished and whose second run is under way."""
    task_id = (await stack.create("first run #chunks=4")).task.id
    await stack.stream(task_id)  # ends at the first run's task_finished: the task can be continued
    await stack.create(f"{LONG} #chunks=30 #delay=0.002", existing_task_id=task_id)
    return task_id


async def test_random_cuts_lose_duplicate_and_reorder_no_event() -> None:
    seed = int(os.environ.get("FAULT_SEED", random.randrange(2**32)))
    print(f"fault test seed {seed}: FAULT_SEED={seed} replays this run")
    rng = random.Random(seed)
    async with bridge_stack() as stack:
        continued = await asyncio.gather(*(continued_task(stack) for _ in range(14)))
        fresh = [(await stack.create(f"{LONG} {n} #chunks=30 #delay=0.002")).task.id for n in range(30)]
        reads: list[Read] = [(task_id, {}) for task_id in fresh]
        reads += [(task_id, {"after_sequence": 0}) for task_id in fresh]
        for task_id in continued:
            reads += [(task_id, {}), (task_id, {"after_sequence": 0}), (task_id, {"after_sequence": 3})]
        upstream = urlsplit(stack.platform.url)
        assert upstream.hostname is not None
        assert upstream.port is not None
        started = time.monotonic()
        async with CuttingProxy(upstream.hostname, upstream.port, rng) as proxy:
            settings = bridge_settings(
                stack.platform,
                events_base_url=proxy.url,
                sse_reconnect_attempts=50,
                sse_backoff_initial=0.001,
                sse_backoff_max=0.01,
            )
            async with BridgeServer(settings) as bridge, grpc.aio.insecure_channel(bridge.address) as channel:
                stub: task_service_pb2_grpc.TaskServiceAsyncStub = task_service_pb2_grpc.TaskServiceStub(
                    channel
                )
                # The first round reads tasks while they run; later ones (until enough cuts) replay them.
                rounds: list[list[Any]] = []
                while proxy.drops < 1000 and len(rounds) < 5:
                    reading = (summary(stub, read) for read in reads)
                    rounds.append(await asyncio.gather(*reading, return_exceptions=True))
        elapsed = time.monotonic() - started
        clean = await asyncio.gather(*(summary(stack.stub, read) for read in reads))
    print(
        f"seed {seed}: {len(rounds)} rounds of {len(reads)} streams, {proxy.connections} connections, "
        f"{proxy.drops} cuts ({proxy.drops_after_finished} right after task_finished) in {elapsed:.1f}s"
    )
    for outcomes in rounds:
        for read, cut, whole in zip(reads, outcomes, clean, strict=True):
            assert not isinstance(cut, BaseException), f"seed {seed}: {read} did not end OK: {cut}"
            assert whole, f"seed {seed}: the clean read of {read} is empty"
            assert cut == whole, (
                f"seed {seed}: {read} got {[event[0] for event in cut]}, a clean read {[e[0] for e in whole]}"
            )
    assert len(reads) >= 50
    assert proxy.drops >= 1000, f"seed {seed}: only {proxy.drops} cuts"
    assert proxy.drops_after_finished > 0, f"seed {seed}: no cut right after task_finished"

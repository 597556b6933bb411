"""An idle stream holds none of its events: once delivered, an event belongs to no one in the bridge.

Ten thousand idle streams each keeping their last event would cost the bridge gigabytes; the relay and the
servicer hand every event on and drop it. tracemalloc attributes each live allocation to the line that made
it: every event envelope is parsed in `bridge/platform/jsonbody.py`, so the memory allocated there and still
alive must not grow with the number of idle streams (orjson keeps a small, bounded cache of dict keys).
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Iterator

import grpc
import pytest

from tests.e2e.harness import Stack
from xpander.bridge.v1 import task_service_pb2

STREAMS = 20


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def parsed_bytes_alive() -> int:
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, "*/bridge/platform/jsonbody.py")]
    )
    return sum(stat.size for stat in snapshot.statistics("filename"))


async def first_events(stack: Stack, task_id: str, count: int) -> grpc.aio.UnaryStreamCall:  # type: ignore[type-arg]
    call = stack.stub.StreamEvents(task_service_pb2.StreamEventsRequest(task_id=task_id), timeout=30)
    for _ in range(count):
        await call.read()
    return call


async def idle_streams(stack: Stack, count: int) -> list[grpc.aio.UnaryStreamCall]:  # type: ignore[type-arg]
    """`count` streams of paused tasks, each having delivered its first three events and then gone quiet."""
    tasks = [(await stack.create("#pause #delay=0.001")).task.id for _ in range(count)]
    return list(await asyncio.gather(*(first_events(stack, task_id, 3) for task_id in tasks)))


@pytest.mark.usefixtures("traced")
async def test_idle_streams_hold_no_event(stack: Stack) -> None:
    calls = await idle_streams(stack, STREAMS)  # also warms orjson's key cache
    await stack.control.wait_open_streams(STREAMS)
    before = parsed_bytes_alive()
    calls += await idle_streams(stack, STREAMS)
    await stack.control.wait_open_streams(2 * STREAMS)
    # Each of these streams parsed three events of more than 300 bytes each; none may still hold one.
    async with asyncio.timeout(5):
        while parsed_bytes_alive() - before >= STREAMS * 100:  # noqa: ASYNC110 (the last hand-over ends as grpc takes it)
            await asyncio.sleep(0.01)
    assert stack.bridge.task_service.open_streams == 2 * STREAMS
    for call in calls:
        call.cancel()

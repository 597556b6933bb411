"""EventRelay: items in order, heartbeats on silence, interruption, and the source closed on every exit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from bridge.relay import HEARTBEAT, EventRelay, RelayInterrupted


class Source:
    """An async generator source whose items are released by the test; records that it was closed."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[int | None] = asyncio.Queue()
        self.closed = asyncio.Event()
        self.task: asyncio.Task[object] | None = None

    async def items(self) -> AsyncGenerator[int, None]:
        self.task = asyncio.current_task()
        try:
            while (item := await self.queue.get()) is not None:
                yield item
        finally:
            self.closed.set()


async def test_items_arrive_in_order_then_the_relay_ends() -> None:
    source = Source()
    for item in (1, 2, 3, None):
        source.queue.put_nowait(item)
    async with EventRelay(source.items()) as relay:
        assert [item async for item in relay] == [1, 2, 3]
    assert source.closed.is_set()


async def test_source_runs_in_its_own_task() -> None:
    source = Source()
    source.queue.put_nowait(None)
    async with EventRelay(source.items()) as relay:
        assert [item async for item in relay] == []
    assert source.task is not asyncio.current_task()


async def test_heartbeat_after_silence_then_the_item() -> None:
    source = Source()
    async with EventRelay(source.items(), heartbeat_interval=0.02) as relay:
        assert await anext(relay) is HEARTBEAT
        assert await anext(relay) is HEARTBEAT
        source.queue.put_nowait(7)
        item = await anext(relay)
        while item is HEARTBEAT:
            item = await anext(relay)
        assert item == 7


async def test_source_errors_reach_the_consumer() -> None:
    async def failing() -> AsyncGenerator[int, None]:
        yield 1
        raise ValueError("upstream broke")

    async with EventRelay(failing()) as relay:
        assert await anext(relay) == 1
        with pytest.raises(ValueError, match="upstream broke"):
            await anext(relay)


async def test_interrupt_wakes_a_waiting_consumer_and_closes_the_source() -> None:
    source = Source()
    async with EventRelay(source.items()) as relay:
        waiting = asyncio.ensure_future(anext(relay))
        await asyncio.sleep(0.01)
        relay.interrupt()
        with pytest.raises(RelayInterrupted):
            await waiting
        with pytest.raises(RelayInterrupted):
            await anext(relay)
    assert source.closed.is_set()


async def test_cancelling_the_consumer_closes_the_source() -> None:
    source = Source()

    async def consume() -> None:
        async with EventRelay(source.items()) as relay:
            async for _ in relay:
                pass

    consumer = asyncio.ensure_future(consume())
    await asyncio.sleep(0.01)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert source.closed.is_set()


async def test_a_full_buffer_holds_the_source_back() -> None:
    produced: list[int] = []

    async def counting() -> AsyncGenerator[int, None]:
        for item in range(100):
            produced.append(item)
            yield item

    async with EventRelay(counting(), buffer_size=4) as relay:
        assert await anext(relay) == 0
        await asyncio.sleep(0.01)
        assert len(produced) <= 4 + 2

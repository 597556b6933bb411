"""A relay between an upstream event source and a downstream stream: buffering, heartbeats and interruption.

The source (an async generator reading the platform) runs in its own task and fills a small bounded buffer, so
the downstream side can wait for the next item with a timer (a heartbeat is due when the source stayed silent
that long) and can be interrupted (server shutdown) without ever cancelling the source halfway through a
read. Leaving the `async with` block cancels the source task and waits for it, so the upstream connection is
closed before the block is left: on normal exit, on error and on cancellation alike.

The heartbeat timer measures silence as the downstream sees it: only items count. Upstream keep-alive
comments never reach the relay, so a platform that sends keep-alives every 15 s still lets heartbeats
(asked for every 10 s, say) reach the client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator
from typing import Final, Generic, TypeVar

__all__ = ["HEARTBEAT", "EventRelay", "Heartbeat", "RelayInterrupted"]

T = TypeVar("T")


class Heartbeat:
    """Marker yielded when the source stayed silent for the heartbeat interval."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "HEARTBEAT"


HEARTBEAT: Final = Heartbeat()
"""The one Heartbeat instance."""


class RelayInterrupted(Exception):
    """The relay was interrupted (e.g. the server is shutting down) before the source ended."""


class _End:
    __slots__ = ()


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


_END: Final = _End()


class EventRelay(Generic[T]):
    """Relays `source`'s items, and HEARTBEAT after `heartbeat_interval` seconds of silence (None: never).

    The buffer is a deque and two futures (a consumer waiting for items, the source waiting for room) created
    only when one side has to wait: while the source has events parsed ahead, an item costs an append and a
    pop, with no task switch. The event loop is looked up once, not on every hand-over.
    """

    def __init__(
        self,
        source: AsyncGenerator[T, None],
        *,
        heartbeat_interval: float | None = None,
        buffer_size: int = 16,
    ) -> None:
        self._source = source
        self._heartbeat_interval = (
            heartbeat_interval if heartbeat_interval and heartbeat_interval > 0 else None
        )
        self._buffer_size = max(1, buffer_size)
        self._items: deque[T | _End | _Failure] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._items_ready: asyncio.Future[None] | None = None
        self._room: asyncio.Future[None] | None = None
        self._producer: asyncio.Task[None] | None = None
        self._interrupted = False

    async def __aenter__(self) -> EventRelay[T]:
        self._loop = asyncio.get_running_loop()
        self._producer = self._loop.create_task(self._pump())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stop_producer()

    def interrupt(self) -> None:
        """End the relay: the next (or pending) `__anext__` raises RelayInterrupted. Safe to call any time."""
        if self._interrupted:
            return
        self._interrupted = True
        if self._producer is not None:
            self._producer.cancel()
        _wake(self._items_ready)

    def __aiter__(self) -> EventRelay[T]:
        return self

    async def __anext__(self) -> T | Heartbeat:
        items = self._items
        while not items:
            if self._interrupted:
                raise RelayInterrupted
            loop = self._loop
            assert loop is not None, "iterate the relay inside `async with`"
            waiter = self._items_ready = loop.create_future()
            if self._heartbeat_interval is None:
                await waiter
                continue
            timer = loop.call_later(self._heartbeat_interval, _wake, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
            if not items and not self._interrupted:
                return HEARTBEAT
        if self._interrupted:
            raise RelayInterrupted
        item = items.popleft()
        _wake(self._room)
        if isinstance(item, _End):
            items.appendleft(item)  # the end stays the end for any later call
            raise StopAsyncIteration
        if isinstance(item, _Failure):
            items.appendleft(_END)
            raise item.error
        return item

    def _put(self, item: T | _End | _Failure) -> None:
        self._items.append(item)
        _wake(self._items_ready)

    async def _pump(self) -> None:
        # The source is iterated, and closed, in this task only: its `async with` blocks enter and exit here.
        loop = self._loop
        assert loop is not None
        items, limit = self._items, self._buffer_size
        try:
            async with contextlib.aclosing(self._source) as source:
                async for item in source:
                    self._put(item)
                    del item  # not held here while the source waits: an idle stream would keep its last item
                    while len(items) >= limit:
                        room = self._room = loop.create_future()
                        await room
        except Exception as error:
            self._put(_Failure(error))
            return
        self._put(_END)

    async def _stop_producer(self) -> None:
        producer = self._producer
        if producer is None:
            return
        if not producer.done():
            producer.cancel()
        # asyncio.wait never raises the producer's CancelledError; only cancelling this task ends it early.
        await asyncio.wait({producer})
        if not producer.cancelled():
            producer.exception()  # retrieved so asyncio does not report it; _pump keeps none anyway


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)

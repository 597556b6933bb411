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
    """Relays `source`'s items, and HEARTBEAT after `heartbeat_interval` seconds of silence (None: never)."""

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
        self._queue: asyncio.Queue[T | _End | _Failure] = asyncio.Queue(maxsize=buffer_size)
        self._producer: asyncio.Task[None] | None = None
        self._interrupted = False

    async def __aenter__(self) -> EventRelay[T]:
        self._producer = asyncio.get_running_loop().create_task(self._pump())
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
        # Wake a consumer blocked on an empty buffer; a full buffer means it is not blocked on it.
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(_END)

    def __aiter__(self) -> EventRelay[T]:
        return self

    async def __anext__(self) -> T | Heartbeat:
        if self._interrupted:
            raise RelayInterrupted
        if self._queue.empty() and self._heartbeat_interval is not None:
            try:
                async with asyncio.timeout(self._heartbeat_interval):
                    item = await self._queue.get()
            except TimeoutError:
                return HEARTBEAT
        else:
            item = await self._queue.get()
        if self._interrupted:
            raise RelayInterrupted
        if isinstance(item, _End):
            raise StopAsyncIteration
        if isinstance(item, _Failure):
            raise item.error
        return item

    async def _pump(self) -> None:
        # The source is iterated, and closed, in this task only: its `async with` blocks enter and exit here.
        try:
            async with contextlib.aclosing(self._source) as source:
                async for item in source:
                    await self._queue.put(item)
        except Exception as error:
            await self._queue.put(_Failure(error))
            return
        await self._queue.put(_END)

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

"""StreamEvents below the gRPC edge: follow a task's platform stream, relay it with heartbeats, drain it.

`TaskEventStreams` owns every open stream of the server: it follows the platform (`Follower`: reconnects,
resumes, skips replays), relays the events through a small buffer (`EventRelay`: heartbeats on silence,
interruption at shutdown), and, when the platform refuses a stream or closes it before any event, reads the
task once to say why (FAILED_PRECONDITION for a task created without `events_streaming`). It knows nothing
of gRPC: the servicer converts what it yields and turns what it raises into a status.

One owner per event: an event is held by the relay's buffer until taken, then by the caller alone, so a
stream waiting for the next event holds none.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any, Final, NamedTuple

from bridge import convert
from bridge.credentials import Credentials
from bridge.errors import DeadlineExceeded, FailedPrecondition, Unavailable
from bridge.platform.client import PlatformClient
from bridge.platform.follow import Follower, ReconnectPolicy, StreamRefused
from bridge.relay import EventRelay, Heartbeat, RelayInterrupted

__all__ = ["Beat", "Event", "TaskEventStreams"]

Event = tuple[int, dict[str, Any]]
"""One platform event: its sequence and its envelope (the parsed JSON object)."""

# Seconds a client is told to wait before resuming elsewhere when this server shuts down.
_SHUTDOWN_RETRY_AFTER: Final = 1.0


class Beat(NamedTuple):
    """The stream stayed silent for the heartbeat interval; `sequence` is that of the last event yielded."""

    sequence: int


class TaskEventStreams:
    """Every open event stream of the server: opened by `events()`, ended together by `drain()`."""

    def __init__(
        self,
        platform: PlatformClient,
        *,
        policy: ReconnectPolicy | None = None,
        on_reconnect: Callable[[], object] | None = None,
    ) -> None:
        self._platform = platform
        self._policy = policy or ReconnectPolicy()
        self._on_reconnect = on_reconnect
        self._relays: set[EventRelay[Event]] = set()
        self._draining = False

    @property
    def open_streams(self) -> int:
        """Number of streams currently relaying events."""
        return len(self._relays)

    def drain(self) -> None:
        """Refuse new streams and end open ones with UNAVAILABLE, so their clients resume elsewhere."""
        self._draining = True
        for relay in list(self._relays):
            relay.interrupt()

    async def events(
        self,
        task_id: str,
        creds: Credentials,
        *,
        after_sequence: int | None = None,
        heartbeat: float | None = None,
        budget: float | None = None,
    ) -> AsyncGenerator[Event | Beat, None]:
        """The task's events after `after_sequence` (None: where the platform starts), and a Beat per silence.

        `budget` is the seconds the caller has left (None: no deadline), for the one task read a refused
        stream costs. Ends when the task's stream does; raises a BridgeError otherwise.
        """
        delivered = after_sequence or 0
        if self._draining:
            raise _shutting_down(task_id, delivered)
        deadline = None if budget is None else asyncio.get_running_loop().time() + budget
        follower = Follower(
            self._platform,
            task_id,
            creds,
            after_sequence=after_sequence,
            policy=self._policy,
            on_reconnect=self._on_reconnect,
        )
        relay = EventRelay(self._follow(follower, task_id, creds, deadline), heartbeat_interval=heartbeat)
        self._relays.add(relay)
        try:
            async with relay:
                async for item in relay:
                    if isinstance(item, Heartbeat):
                        yield Beat(delivered)
                        continue
                    delivered = item[0]
                    yield item
                    # Not kept while waiting for the next one: the caller is the event's only owner now.
                    del item
        except RelayInterrupted:
            raise _shutting_down(task_id, delivered) from None
        finally:
            self._relays.discard(relay)

    async def _follow(
        self, follower: Follower, task_id: str, creds: Credentials, deadline: float | None
    ) -> AsyncGenerator[Event, None]:
        while True:
            try:
                async with aclosing(follower.events()) as events:
                    async for event in events:
                        yield event
                        del event
                return
            except StreamRefused as refused:
                await self._explain(task_id, creds, deadline)
                if not refused.retriable:
                    raise refused.error from None
                # Merely empty, and the task streams: iterating the follower again reconnects.

    async def _explain(self, task_id: str, creds: Credentials, deadline: float | None) -> None:
        """FAILED_PRECONDITION when the task was created without `events_streaming`; else nothing."""
        budget = None if deadline is None else deadline - asyncio.get_running_loop().time()
        if budget is not None and budget <= 0:
            raise DeadlineExceeded("the call's deadline passed before the task was read", reason="DEADLINE")
        task = convert.task_from_platform(await self._platform.get_task(task_id, creds, budget=budget))
        if not task.events_streaming:
            raise FailedPrecondition(
                f"task {task_id} was not created with events_streaming; "
                "create it with events_streaming=true to stream its events",
                reason="EVENTS_STREAMING_DISABLED",
                metadata={"task_id": task_id},
            )


def _shutting_down(task_id: str, delivered: int) -> Unavailable:
    return Unavailable(
        f"the bridge is shutting down; resume the events of task {task_id} with after_sequence={delivered}",
        reason="BRIDGE_SHUTTING_DOWN",
        metadata={"task_id": task_id, "last_sequence": str(delivered)},
        retry_after=_SHUTDOWN_RETRY_AFTER,
    )

"""Following a task's events across upstream drops: reconnect, resume, skip what was already delivered.

`follow_task_events` yields each event of the task's platform stream exactly once, in order, from just after
`after_sequence` to the end. When the upstream connection drops before the end it reconnects with
`Last-Event-ID` (the last sequence delivered) after a bounded, jittered exponential backoff, and skips by
sequence whatever the platform replays. Only when the reconnections in a row are used up does it raise
UNAVAILABLE, naming the last sequence delivered so the caller can resume with `after_sequence`.

The stream's end is the platform closing it after a `task_finished` event (the platform closes every task
stream that way). A continued task replays earlier runs, each with its own `task_finished`, so a
`task_finished` followed by more events does not end the stream; one followed by silence does, after
`FINISH_LINGER` seconds, in case a platform keeps the connection open.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from bridge.credentials import Credentials
from bridge.errors import (
    BridgeError,
    DeadlineExceeded,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from bridge.platform.client import PlatformClient

__all__ = ["FINISH_LINGER", "ReconnectPolicy", "follow_task_events"]

_log = logging.getLogger(__name__)

FINISH_LINGER: Final = 1.0
"""Seconds to wait, after a `task_finished`, for the platform to either close the stream or go on."""

_FINISHED = "task_finished"
# Failures worth another connection: the platform unreachable, overloaded or cut off. Anything else (not
# found, no permission, an unreadable answer) would fail the same way again.
_RETRIABLE: tuple[type[BridgeError], ...] = (Unavailable, DeadlineExceeded)
# Refusals that already say what is wrong; reading the task would only fail the same way.
_SELF_EXPLAINED: tuple[type[BridgeError], ...] = (NotFound, Unauthenticated, PermissionDenied)


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How often and how patiently to reconnect a dropped event stream."""

    attempts: int = 5
    initial_backoff: float = 0.1
    max_backoff: float = 5.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reconnection number `attempt` (1-based): doubling, capped, jittered."""
        ceiling: float = min(self.max_backoff, self.initial_backoff * 2.0 ** (attempt - 1))
        # "Equal jitter": never less than half the ceiling, so a burst of drops still backs off.
        return ceiling / 2 + random.uniform(0, ceiling / 2)


async def follow_task_events(
    client: PlatformClient,
    task_id: str,
    creds: Credentials,
    *,
    after_sequence: int = 0,
    policy: ReconnectPolicy | None = None,
    on_reconnect: Callable[[], object] | None = None,
    check_task: Callable[[], Awaitable[None]] | None = None,
) -> AsyncGenerator[tuple[int, dict[str, Any]], None]:
    """Every `(sequence, envelope)` of the task's stream after `after_sequence`, once each, to the end.

    `on_reconnect` is called before each reconnection after a drop (e.g. to count them). `check_task` is
    awaited at most once, when the first connection is refused (other than not found or not allowed) or ends
    without a single event: it may raise the error that explains why (a task that does not stream). When it
    returns, the refusal is raised as it came, and an empty stream is reconnected like any drop.
    """
    policy = policy or ReconnectPolicy()
    delivered = after_sequence
    failures = 0
    # Last-Event-ID only means something to a platform that numbers its events; the first connection tells.
    resume_by_id = True
    first = True
    while True:
        last_event_id = delivered if resume_by_id and delivered > 0 else None
        progressed = False
        received = 0
        finished = False
        try:
            async with client.stream_events(task_id, creds, last_event_id=last_event_id) as events:
                iterator = aiter(events)
                while True:
                    try:
                        if finished:
                            async with asyncio.timeout(FINISH_LINGER):
                                sequence, envelope = await anext(iterator)
                        else:
                            sequence, envelope = await anext(iterator)
                    except StopAsyncIteration:
                        break
                    except TimeoutError:
                        _log.debug(
                            "task %s: stream still open %.1fs after task_finished", task_id, FINISH_LINGER
                        )
                        return
                    received += 1
                    finished = envelope.get("type") == _FINISHED
                    resume_by_id = resume_by_id and events.numeric_ids
                    if sequence <= delivered:
                        continue
                    delivered = sequence
                    progressed = True
                    yield sequence, envelope
                    # Not kept while waiting for the next one: an idle stream would hold its last event.
                    del envelope
        except _RETRIABLE as error:
            cause: BridgeError = error
        except BridgeError as error:
            if first and received == 0 and check_task is not None and not isinstance(error, _SELF_EXPLAINED):
                await check_task()
            raise
        else:
            if finished:
                return
            if received == 0 and last_event_id is not None:
                # Resumed at the very end (or on a platform that answers Last-Event-ID with nothing): connect
                # once more without it, skipping by sequence, to see how the stream ends. Not a failure.
                resume_by_id = False
                continue
            if first and received == 0 and check_task is not None:
                await check_task()
            cause = Unavailable(
                f"the platform closed the event stream of task {task_id} before task_finished",
                reason="UPSTREAM_STREAM_CLOSED",
                metadata={"route": "task_events"},
            )
        first = False
        failures = 0 if progressed else failures + 1
        if failures > policy.attempts:
            raise _exhausted(task_id, delivered, policy, cause)
        delay = policy.delay(max(failures, 1))
        if cause.retry_after is not None:
            delay = max(delay, min(cause.retry_after, policy.max_backoff))
        _log.info(
            "task %s: event stream interrupted after sequence %d (%s); reconnecting in %.2fs",
            task_id,
            delivered,
            cause.reason,
            delay,
        )
        await asyncio.sleep(delay)
        if on_reconnect is not None:
            on_reconnect()


def _exhausted(task_id: str, delivered: int, policy: ReconnectPolicy, cause: BridgeError) -> Unavailable:
    metadata = {**cause.metadata, "route": "task_events", "last_sequence": str(delivered)}
    return Unavailable(
        f"lost the platform's event stream of task {task_id} and {policy.attempts} reconnections failed "
        f"({cause.message}); resume with after_sequence={delivered}",
        reason="UPSTREAM_STREAM_LOST",
        metadata=metadata,
        retry_after=policy.max_backoff,
    )

"""Following a task's events across upstream drops: reconnect, resume, skip what was already delivered.

Two parts. `Connection` reads one upstream connection and says how it ended: `Ended` (cleanly, or cut with a
retriable error) or `Refused` (the platform would not open the stream). `Follower` is the reconnect loop: it
yields each event of the task's stream exactly once, in order, from just after `after_sequence` to the end.

Every connection after the first resumes from the last sequence delivered (`Last-Event-ID`), whatever the
previous one returned, and whatever the platform replays is skipped by sequence. `after_sequence` is
presence-aware: None starts where the platform starts (the newest run of a continued task), 0 asks for every
event from the first run.

The stream's end is a `task_finished` after which the platform closes the stream (the platform closes every
task stream that way). A continued task replays earlier runs, each with its own `task_finished`, so a
`task_finished` followed by more events does not end the stream; one followed by silence does, after
`FINISH_LINGER` seconds, in case a platform keeps the connection open. A connection cut right after a
`task_finished` is resumed once more to see whether another run follows; when the client already has the
`task_finished` (the last event delivered), an empty clean answer ends the stream, and so does running out of
reconnections: the stream ends OK. Otherwise, when the reconnections in a row are used up, UNAVAILABLE names
the last sequence delivered so the caller can resume with `after_sequence`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
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

__all__ = [
    "FINISH_LINGER",
    "Connection",
    "Ended",
    "Follower",
    "ReconnectPolicy",
    "Refused",
    "StreamRefused",
]

_log = logging.getLogger(__name__)

FINISH_LINGER: Final = 1.0
"""Seconds to wait, after a `task_finished`, for the platform to either close the stream or go on."""

_FINISHED = "task_finished"
# Failures worth another connection: the platform unreachable, overloaded or cut off. Anything else (not
# found, no permission, an unreadable or oversized answer) would fail the same way again.
_RETRIABLE: tuple[type[BridgeError], ...] = (Unavailable, DeadlineExceeded)
# Refusals that already say what is wrong; reading the task would only fail the same way.
_SELF_EXPLAINED: tuple[type[BridgeError], ...] = (NotFound, Unauthenticated, PermissionDenied)

Event = tuple[int, dict[str, Any]]


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


@dataclass(frozen=True, slots=True)
class Ended:
    """A connection that ended: cleanly when `dropped` is None, else cut by that retriable error."""

    received: int
    """Events read on it, delivered or skipped."""
    finished: bool
    """Its last event was a `task_finished`."""
    numeric_ids: bool
    """Its events were numbered, so `Last-Event-ID` means something to this platform."""
    dropped: BridgeError | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """The platform refused to open the stream, for a reason another attempt would not change."""

    error: BridgeError


class StreamRefused(Exception):
    """Before any event, the platform refused the stream or closed it empty: the task may explain why.

    Raised at most once per `Follower`. `error` is what the platform answered; when `retriable`, the stream
    was merely empty, and iterating the follower again reconnects as after any drop.
    """

    def __init__(self, error: BridgeError, *, retriable: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.retriable = retriable


class Connection:
    """One upstream connection of a task's event stream: its events, then `outcome`, how it ended."""

    def __init__(
        self, client: PlatformClient, task_id: str, creds: Credentials, last_event_id: int | None
    ) -> None:
        self._client = client
        self._task_id = task_id
        self._creds = creds
        self.last_event_id = last_event_id
        self.outcome: Ended | Refused | None = None
        """Set when `events()` stops without raising."""

    async def events(self) -> AsyncGenerator[Event, None]:
        """The connection's events as the platform sends them; errors other than drops and refusals raise."""
        received, finished, opened, numeric = 0, False, False, True
        try:
            async with self._client.stream_events(
                self._task_id, self._creds, last_event_id=self.last_event_id
            ) as stream:
                opened = True
                iterator = aiter(stream)
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
                            "task %s: stream open %.1fs after task_finished", self._task_id, FINISH_LINGER
                        )
                        break
                    received += 1
                    finished = envelope.get("type") == _FINISHED
                    numeric = stream.numeric_ids
                    yield sequence, envelope
                    # Not kept while waiting for the next one: an idle stream would hold its last event.
                    del envelope
        except _RETRIABLE as error:
            self.outcome = Ended(received, finished, numeric, dropped=error)
            return
        except BridgeError as error:
            if opened:
                raise
            self.outcome = Refused(error)
            return
        self.outcome = Ended(received, finished, numeric)


class _Cursor:
    """Where the client is: the last sequence delivered, and whether that event is a `task_finished`."""

    __slots__ = ("by_position", "delivered", "finished")

    def __init__(self, after_sequence: int | None) -> None:
        self.delivered = after_sequence
        self.finished: bool | None = None
        """Whether event `delivered` is a `task_finished`; None until seen (a resumed call does not know)."""
        self.by_position = False
        """The platform does not number its events: each connection counts from its start again."""

    def take(self, sequence: int, envelope: dict[str, Any]) -> bool:
        """Note an event read upstream; True when it is new to the client."""
        delivered = self.delivered
        if delivered is not None and sequence < delivered:
            return False
        self.finished = envelope.get("type") == _FINISHED
        if sequence == delivered:
            return False
        self.delivered = sequence
        return True

    def resume_id(self, probing: bool) -> int | None:
        """The `Last-Event-ID` of the next connection."""
        return None if probing or self.by_position else self.delivered


class Follower:
    """The task's events after `after_sequence`, once each, in order, to the end, across drops.

    Iterate `events()`. It raises `StreamRefused` at most once (then `events()` may be iterated again to go
    on), the platform's error for any other refusal, and UNAVAILABLE `UPSTREAM_STREAM_LOST` when the
    reconnections in a row are used up. `on_reconnect` is called before each reconnection (to count them).
    """

    def __init__(
        self,
        client: PlatformClient,
        task_id: str,
        creds: Credentials,
        *,
        after_sequence: int | None = None,
        policy: ReconnectPolicy | None = None,
        on_reconnect: Callable[[], object] | None = None,
    ) -> None:
        self._client = client
        self._task_id = task_id
        self._creds = creds
        self._policy = policy or ReconnectPolicy()
        self._on_reconnect = on_reconnect
        self._cursor = _Cursor(after_sequence)
        self._seen_any = False
        self._refusal_raised = False
        self._probing = False
        self._failures = 0
        self._cause: BridgeError | None = None
        """Why the last connection ended before the stream did; the next one waits out a backoff first."""

    @property
    def delivered(self) -> int | None:
        """The last sequence delivered (or the `after_sequence` asked for, until one is)."""
        return self._cursor.delivered

    async def events(self) -> AsyncGenerator[Event, None]:
        """Each new event, as `(sequence, envelope)`."""
        cursor = self._cursor
        while True:
            if self._cause is not None and not await self._wait_to_reconnect(self._cause):
                return
            before = cursor.delivered
            connection = Connection(self._client, self._task_id, self._creds, cursor.resume_id(self._probing))
            async with aclosing(connection.events()) as events:
                async for sequence, envelope in events:
                    self._seen_any = True
                    if cursor.take(sequence, envelope):
                        yield sequence, envelope
                    del envelope
            outcome = connection.outcome
            assert outcome is not None
            if isinstance(outcome, Refused):
                raise self._refusal(outcome.error)
            if self._ended(outcome, connection.last_event_id, progressed=cursor.delivered != before):
                return

    def _ended(self, outcome: Ended, last_event_id: int | None, *, progressed: bool) -> bool:
        """Whether `outcome` ends the stream; if not, records why for the next connection's wait."""
        cursor = self._cursor
        cursor.by_position = cursor.by_position or not outcome.numeric_ids
        probed, self._probing, self._cause = self._probing, False, None
        if outcome.dropped is None:
            if outcome.finished or (outcome.received == 0 and cursor.finished):
                return True
            if outcome.received == 0 and last_event_id and cursor.finished is None and not probed:
                # Resumed where the platform has nothing more, but the client's last event is not known to
                # be the end: connect once from where the platform starts, skipping by sequence, to see it.
                self._probing = True
                return False
        self._failures = 0 if progressed else self._failures + 1
        self._cause = outcome.dropped or Unavailable(
            f"the platform closed the event stream of task {self._task_id} before task_finished",
            reason="UPSTREAM_STREAM_CLOSED",
            metadata={"route": "task_events"},
        )
        closed_empty = outcome.dropped is None and outcome.received == 0
        if closed_empty and not self._seen_any and not self._refusal_raised:
            self._refusal_raised = True
            raise StreamRefused(self._cause, retriable=True)
        return False

    def _refusal(self, error: BridgeError) -> BridgeError | StreamRefused:
        if self._seen_any or self._refusal_raised or isinstance(error, _SELF_EXPLAINED):
            return error
        self._refusal_raised = True
        return StreamRefused(error, retriable=False)

    async def _wait_to_reconnect(self, cause: BridgeError) -> bool:
        """Back off before the next connection; False when the stream should end OK instead."""
        policy, delivered = self._policy, self._cursor.delivered
        if self._failures > policy.attempts:
            if self._cursor.finished:
                _log.info(
                    "task %s: ending after task_finished; the platform stays unreachable", self._task_id
                )
                return False
            raise _exhausted(self._task_id, delivered or 0, policy, cause)
        delay = policy.delay(max(self._failures, 1))
        if cause.retry_after is not None:
            delay = max(delay, min(cause.retry_after, policy.max_backoff))
        _log.info(
            "task %s: event stream interrupted after sequence %s (%s); reconnecting in %.2fs",
            self._task_id,
            delivered,
            cause.reason,
            delay,
        )
        await asyncio.sleep(delay)
        if self._on_reconnect is not None:
            self._on_reconnect()
        return True


def _exhausted(task_id: str, delivered: int, policy: ReconnectPolicy, cause: BridgeError) -> Unavailable:
    metadata = {**cause.metadata, "route": "task_events", "last_sequence": str(delivered)}
    return Unavailable(
        f"lost the platform's event stream of task {task_id} and {policy.attempts} reconnections failed "
        f"({cause.message}); resume with after_sequence={delivered}",
        reason="UPSTREAM_STREAM_LOST",
        metadata=metadata,
        retry_after=policy.max_backoff,
    )

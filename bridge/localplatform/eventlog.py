"""One task's event stream, kept as ready-to-send SSE frames so any number of readers replay it cheaply."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["EventLog"]


class EventLog:
    """Append-only SSE frames (`id: <sequence>` + `data: <envelope>`), sequence 1-based, plus wake-ups.

    A reader catches up by slicing `frames` from its position, then awaits `waiter()` for more. The log is
    `finished` while its newest frame is a `task_finished`: a reader that has caught up then ends its stream.
    A continued task appends a new run after that frame, so `finished` turns false again; `run_start` is the
    index of the frame that began the newest run.
    """

    __slots__ = ("_waiters", "finished", "frames", "run_start")

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.finished = False
        self.run_start = 0
        self._waiters: list[asyncio.Future[None]] = []

    def append(self, envelope: bytes, *, starts_run: bool = False, finishes: bool = False) -> int:
        """Add one event (its JSON envelope) and wake the readers; returns its sequence number."""
        sequence = len(self.frames) + 1
        if starts_run:
            self.run_start = sequence - 1
        self.frames.append(b"id: %d\ndata: %b\n\n" % (sequence, envelope))
        self.finished = finishes
        self.wake()
        return sequence

    def waiter(self) -> asyncio.Future[None]:
        """A future resolved at the next append (or `wake`)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        return future

    def discard(self, future: asyncio.Future[None]) -> None:
        """Forget a waiter its reader gave up on (timed out for a keep-alive, or went away)."""
        with contextlib.suppress(ValueError):  # already woken: wake() dropped it
            self._waiters.remove(future)

    def wake(self) -> None:
        """Resolve every pending waiter: new frames, or the platform is shutting down."""
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

"""The task event stream, `GET /{organization_id}/agent-execution/{task_id}/events`, as SSE.

Each event is `id: <sequence>` + `data: <envelope>`, the sequence 1-based and running on across the runs of a
continued task. A reader without `Last-Event-ID` starts at the `task_created` of the task's newest run (for a
task never continued: its first event), so an SDK consumer that stops at the first `task_finished` it sees
never mistakes an earlier run's end for the current one; `Last-Event-ID: N` resumes after event N, across runs
(`0` replays everything). The reader then follows the log live, and the server closes the stream once the
reader has caught up with a log whose newest event is `task_finished`: a reader connected during one run ends
at that run's `task_finished` unless the next run had already begun. While nothing happens the server sends
`: keepalive` comment lines every keepalive interval.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from bridge.localplatform.eventlog import EventLog
from bridge.localplatform.handlers import task_record
from bridge.localplatform.state import CLOSE_CLEANLY, COUNTED, DROP_AFTER, STATE, PlatformState
from bridge.localplatform.wire import ApiError

__all__ = ["task_events"]

_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_KEEPALIVE = b": keepalive\n\n"


async def task_events(request: web.Request) -> web.StreamResponse:
    """Stream a task's events; 404 unknown task, 409 task created without `events_streaming`."""
    state = request.app[STATE]
    record = task_record(state, request.match_info["task_id"])
    if not record.task["events_streaming"]:
        raise ApiError(409, f"task {record.id} was created without events_streaming")
    position = _start_position(request, record.log)
    drop_after = request.get(DROP_AFTER)

    response = web.StreamResponse(headers=_HEADERS)
    await response.prepare(request)
    # Counted now, not when the stream ends: tests look at stats while streams are still open.
    state.stats.count("task_events", 200)
    request[COUNTED] = True
    state.stats.stream_opened()
    try:
        if await _pump(state, record.log, response, position, drop_after) or request.get(CLOSE_CLEANLY):
            await response.write_eof()
        elif request.transport is not None:
            # An injected drop: close the socket without the final chunk, as a broken proxy would.
            request.transport.close()
    finally:
        state.stats.stream_closed()
    return response


async def _pump(
    state: PlatformState, log: EventLog, response: web.StreamResponse, position: int, drop_after: int | None
) -> bool:
    """Send frames until the log is finished or the platform closes (True), or a drop is due (False)."""
    sent = 0
    while True:
        frames = log.frames
        if position < len(frames):
            batch = frames[position:]
            if drop_after is not None and sent + len(batch) >= drop_after:
                await response.write(b"".join(batch[: drop_after - sent]))
                return False
            # One write per batch: a late reader replays a long log in one syscall, not one per event.
            await response.write(b"".join(batch))
            position += len(batch)
            sent += len(batch)
            continue
        if drop_after is not None and drop_after <= sent:
            return False
        if log.finished or state.closing:
            return True
        waiter = log.waiter()
        try:
            await asyncio.wait_for(waiter, state.keepalive_interval)
        except TimeoutError:
            await response.write(_KEEPALIVE)
        finally:
            log.discard(waiter)


def _start_position(request: web.Request, log: EventLog) -> int:
    last_id = request.headers.get("Last-Event-ID")
    if last_id is None:
        return log.run_start
    if not last_id.strip().isdigit():
        raise ApiError(400, "Last-Event-ID: must be a non-negative integer event sequence number")
    # An id beyond the log resumes at its end: the client has seen at least everything there is.
    return min(int(last_id), len(log.frames))

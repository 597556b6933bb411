"""StreamEvents: resume, transparent reconnects, exhausted retries, heartbeats, cancellation and deadlines."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import duration_pb2, json_format

from tests.e2e.harness import Stack, bridge_stack, failure_of
from xpander.bridge.v1 import events_pb2, task_pb2, task_service_pb2

Request = task_service_pb2
HEARTBEAT = events_pb2.TASK_EVENT_TYPE_HEARTBEAT
FINISHED = events_pb2.TASK_EVENT_TYPE_TASK_FINISHED


def summary(messages: list[task_service_pb2.StreamEventsResponse]) -> list[tuple[int, str, str]]:
    """What a client sees of each event: its sequence, type and payload."""
    return [
        (m.event.sequence, m.event.type_name, json_format.MessageToJson(m.event, indent=None))
        for m in messages
        if m.event.type != HEARTBEAT
    ]


async def bridge_streams_closed(stack: Stack) -> None:
    """Wait until the bridge relays no stream (its handlers finish a moment after the upstream closes)."""
    async with asyncio.timeout(2):
        while stack.bridge.task_service.open_streams:  # noqa: ASYNC110 - a counter, not an event
            await asyncio.sleep(0.01)


async def test_after_sequence_sends_only_later_events(stack: Stack) -> None:
    task_id = (await stack.create()).task.id
    full = await stack.stream(task_id)
    resumed = await stack.stream(task_id, after_sequence=3)
    assert summary(resumed) == summary(full)[3:]
    assert await stack.stream(task_id, after_sequence=len(full)) == []
    assert await stack.stream(task_id, after_sequence=10_000) == []


async def test_a_dropped_upstream_is_reconnected_without_gap_or_duplicate() -> None:
    reconnects: list[None] = []
    async with bridge_stack(server_options={"on_stream_reconnect": lambda: reconnects.append(None)}) as stack:
        task_id = (await stack.create("slow enough to drop mid-run #delay=0.02 #chunks=6")).task.id
        await stack.control.fault("task_events", drop_after_events=3)
        await stack.control.fault("task_events", drop_after_events=2)
        interrupted = await stack.stream(task_id)
        clean = await stack.stream(task_id)
        connections = await stack.control.requests("task_events")
    assert summary(interrupted) == summary(clean)
    assert [m.event.sequence for m in interrupted] == list(range(1, len(clean) + 1))
    assert interrupted[-1].event.type == FINISHED
    # Three upstream connections for the interrupted stream (two drops), one for the clean one.
    assert connections == {"200": 4}
    assert len(reconnects) == 2


async def test_a_first_stream_closed_before_any_event_reads_the_task_once_then_reconnects(
    stack: Stack,
) -> None:
    task_id = (await stack.create()).task.id
    await stack.control.reset_stats()
    await stack.control.fault("task_events", drop_after_events=0, close_cleanly=True)
    messages = await stack.stream(task_id)
    assert [m.event.sequence for m in messages] == list(range(1, len(messages) + 1))
    assert messages[-1].event.type == FINISHED
    # The empty answer could have meant a task that does not stream: the task was read to rule that out.
    assert await stack.control.requests("get_task") == {"200": 1}
    assert await stack.control.requests("task_events") == {"200": 2}


async def test_a_refused_stream_of_a_streaming_task_keeps_the_platform_answer(stack: Stack) -> None:
    task_id = (await stack.create()).task.id
    await stack.control.reset_stats()
    await stack.control.fault("task_events", status=409, detail="busy elsewhere")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stack.stream(task_id)
    got = failure_of(error.value)
    # The task streams, so the refusal is not explained away: the platform's 409 reaches the caller.
    assert got.error_info is not None
    assert got.error_info.metadata["http_status"] == "409"
    assert "busy elsewhere" in got.message
    assert await stack.control.requests("get_task") == {"200": 1}


async def test_a_healthy_stream_never_reads_the_task(stack: Stack) -> None:
    task_id = (await stack.create()).task.id
    await stack.control.reset_stats()
    messages = await stack.stream(task_id)
    assert messages[-1].event.type == FINISHED
    assert await stack.control.requests("get_task") == {}
    assert await stack.control.requests("task_events") == {"200": 1}


async def test_exhausted_reconnections_end_with_unavailable_and_the_client_resumes(stack: Stack) -> None:
    task_id = (await stack.create("#delay=0.01")).task.id
    await stack.control.fault("task_events", drop_after_events=2)
    await stack.control.fault("task_events", status=503, times=None, retry_after=1, detail="overloaded")
    received: list[task_service_pb2.StreamEventsResponse] = []

    async def follow() -> None:
        async for message in stack.stub.StreamEvents(
            Request.StreamEventsRequest(task_id=task_id), timeout=10
        ):
            received.append(message)

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await follow()
    got = failure_of(error.value)
    assert got.code == grpc.StatusCode.UNAVAILABLE
    assert [m.event.sequence for m in received] == [1, 2]
    assert got.error_info is not None
    assert got.error_info.reason == "UPSTREAM_STREAM_LOST"
    assert got.error_info.metadata["last_sequence"] == "2"
    assert got.error_info.metadata["http_status"] == "503"
    assert got.retry_info is not None
    assert "after_sequence=2" in got.message
    attempts = stack.bridge.settings.sse_reconnect_attempts
    assert await stack.control.requests("task_events") == {"200": 1, "503": 1 + attempts}

    await stack.control.clear_faults()
    rest = await stack.stream(task_id, after_sequence=2)
    assert summary(received + rest) == summary(await stack.stream(task_id))


async def test_heartbeats_fill_silence_and_keepalive_comments_do_not_count() -> None:
    # The platform's keep-alive comments come faster than the heartbeat interval: heartbeats still flow.
    async with bridge_stack(platform_options={"keepalive_interval": 0.02}) as stack:
        task_id = (await stack.create("waits for a human #pause")).task.id
        call = stack.stub.StreamEvents(
            Request.StreamEventsRequest(
                task_id=task_id, heartbeat_interval=duration_pb2.Duration(nanos=60_000_000)
            ),
            timeout=10,
        )
        events: list[events_pb2.TaskEvent] = []
        async for message in call:
            events.append(message.event)
            if sum(event.type == HEARTBEAT for event in events) == 3:
                break
        call.cancel()
        real = [event for event in events if event.type != HEARTBEAT]
        assert real[-1].task.status == task_pb2.TASK_STATUS_PAUSED
        beats = [event for event in events if event.type == HEARTBEAT]
        assert all(beat.sequence == real[-1].sequence for beat in beats)
        assert all(beat.task_id == task_id for beat in beats)
        assert all(beat.organization_id == stack.platform.organization_id for beat in beats)
        assert all(beat.type_name == "heartbeat" for beat in beats)


async def test_no_heartbeats_unless_asked(stack: Stack) -> None:
    messages = await stack.stream((await stack.create("#delay=0.03")).task.id)
    assert all(m.event.type != HEARTBEAT for m in messages)


async def test_client_cancel_closes_the_upstream_and_leaves_the_task_running(stack: Stack) -> None:
    task_id = (await stack.create("runs until stopped #never")).task.id
    call = stack.stub.StreamEvents(Request.StreamEventsRequest(task_id=task_id), timeout=10)
    async for message in call:
        if message.event.type == events_pb2.TASK_EVENT_TYPE_TOOL_CALL_RESULT:
            break
    await stack.control.wait_open_streams(1)
    call.cancel()
    await stack.control.wait_open_streams(0, within=2.0)
    task = (await stack.stub.GetTask(Request.GetTaskRequest(task_id=task_id), timeout=5)).task
    assert task.status == task_pb2.TASK_STATUS_EXECUTING
    assert await stack.control.requests("stop_task") == {}
    await bridge_streams_closed(stack)


async def test_a_stream_deadline_closes_the_upstream(stack: Stack) -> None:
    task_id = (await stack.create("runs until stopped #never")).task.id
    call = stack.stub.StreamEvents(Request.StreamEventsRequest(task_id=task_id), timeout=0.5)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for _ in call:
            pass
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await stack.control.wait_open_streams(0, within=2.0)
    task = (await stack.stub.GetTask(Request.GetTaskRequest(task_id=task_id), timeout=5)).task
    assert task.status == task_pb2.TASK_STATUS_EXECUTING


async def test_many_cancelled_streams_leave_nothing_open(stack: Stack) -> None:
    task_id = (await stack.create("runs until stopped #never")).task.id
    calls = [
        stack.stub.StreamEvents(Request.StreamEventsRequest(task_id=task_id), timeout=10) for _ in range(10)
    ]
    for call in calls:
        await anext(aiter(call))
    await stack.control.wait_open_streams(10)
    for call in calls:
        call.cancel()
    await stack.control.wait_open_streams(0, within=2.0)
    await bridge_streams_closed(stack)


# --- Resuming whatever an upstream connection returned ------------------------------------------------------


async def continued_task(stack: Stack) -> str:
    """A task run twice, both runs finished."""
    task_id = (await stack.create("first run #chunks=2")).task.id
    await stack.stream(task_id)
    await stack.create("second run #chunks=2", existing_task_id=task_id)
    await stack.stream(task_id)
    return task_id


async def test_after_sequence_zero_reads_every_run_and_unset_the_newest(stack: Stack) -> None:
    task_id = await continued_task(stack)
    every = await stack.stream(task_id, after_sequence=0)
    newest = await stack.stream(task_id)
    assert [m.event.sequence for m in every] == list(range(1, len(every) + 1))
    assert [m.event.type for m in every].count(FINISHED) == 2
    assert newest[0].event.type == events_pb2.TASK_EVENT_TYPE_TASK_CREATED
    assert newest[0].event.sequence > 1
    assert summary(newest) == summary(every)[-len(newest) :]


async def test_an_empty_answer_mid_stream_loses_no_run(stack: Stack) -> None:
    task_id = await continued_task(stack)
    await stack.control.fault("task_events", drop_after_events=2)
    await stack.control.fault("task_events", drop_after_events=0, close_cleanly=True)
    resumed = await stack.stream(task_id, after_sequence=1)
    every = await stack.stream(task_id, after_sequence=0)
    assert summary(resumed) == summary(every)[1:]


async def test_a_cut_right_after_task_finished_ends_ok_while_the_platform_refuses(stack: Stack) -> None:
    task_id = (await stack.create()).task.id
    whole = await stack.stream(task_id)
    await stack.control.fault("task_events", drop_after_events=len(whole))
    await stack.control.fault("task_events", status=503, times=None, detail="overloaded")
    assert summary(await stack.stream(task_id)) == summary(whole)

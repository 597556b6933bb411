"""StreamEvents against a scripted event-stream upstream: bounded event size and depth, ids beyond uint64.

REST goes to the local platform; event streams go to a small aiohttp server whose answer each task id
scripts. A gRPC client decodes every message (protobuf's decoding limit is 100 levels).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import orjson
import pytest
from aiohttp import web
from google.protobuf import struct_pb2

from tests.e2e.harness import Stack, bridge_stack, failure_of

LIMIT = 64 * 1024
FINISHED = b'data: {"type":"task_finished","data":{"id":"t","status":"completed"}}\n\n'


def nested(depth: int) -> bytes:
    """An event envelope nesting objects `depth` levels deep, the envelope itself included."""
    data: object = "leaf"
    for _ in range(depth - 1):
        data = {"k": data}
    return orjson.dumps({"type": "custom_event", "data": data})


SCRIPTS: dict[str, list[bytes]] = {
    "deep-32": [b"id: 1\ndata: " + nested(32) + b"\n\n", b"id: 2\n" + FINISHED],
    "deep-33": [b"id: 1\ndata: " + nested(33) + b"\n\n", b"id: 2\n" + FINISHED],
    "huge": [b'id: 1\ndata: {"pad":"' + b"x" * LIMIT + b'"}\n\n', b"id: 2\n" + FINISHED],
    "endless": [b"data: "] + [b"x" * 8192] * 64,
    "big-id": [
        b'id: 18446744073709551616\ndata: {"type":"chunk","data":"a"}\n\n',
        b'id: 18446744073709551617\ndata: {"type":"chunk","data":"b"}\n\n',
        FINISHED,
    ],
}


async def events(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for piece in SCRIPTS[request.match_info["task_id"]]:
        await response.write(piece)
    await response.write_eof()
    return response


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    app = web.Application()
    app.router.add_get("/{organization_id}/agent-execution/{task_id}/events", events)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with bridge_stack(
            events_base_url=f"http://127.0.0.1:{port}", sse_max_event_bytes=LIMIT
        ) as stack:
            yield stack
    finally:
        await runner.cleanup()


def depth_of(value: struct_pb2.Value) -> int:
    """Levels of structs in `value`."""
    levels = 0
    while value.HasField("struct_value"):
        levels += 1
        value = value.struct_value.fields["k"]
    return levels


async def test_an_event_at_the_depth_limit_reaches_the_client_and_decodes(stack: Stack) -> None:
    messages = await stack.stream("deep-32")
    assert [m.event.sequence for m in messages] == [1, 2]
    # The envelope is one of the 32 levels; the 31 others are structs in `data`.
    assert depth_of(messages[0].event.data) == 31


@pytest.mark.parametrize(
    ("task_id", "reason", "limit"),
    [
        ("deep-33", "UPSTREAM_JSON_TOO_DEEP", "32"),
        ("huge", "UPSTREAM_EVENT_TOO_LARGE", str(LIMIT)),
        ("endless", "UPSTREAM_EVENT_TOO_LARGE", str(LIMIT)),
    ],
)
async def test_an_event_beyond_a_limit_ends_the_stream_with_a_clear_error(
    stack: Stack, task_id: str, reason: str, limit: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stack.stream(task_id)
    got = failure_of(error.value)
    assert got.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert got.error_info is not None
    assert got.error_info.reason == reason
    assert dict(got.error_info.metadata) == {"route": "task_events", "limit": limit}


async def test_ids_beyond_uint64_are_counted_by_position(stack: Stack) -> None:
    messages = await stack.stream("big-id")
    assert [m.event.sequence for m in messages] == [1, 2, 3]
    assert [m.event.chunk for m in messages[:2]] == ["a", "b"]

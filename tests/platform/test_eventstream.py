"""EventStream's bounds and ids over a scripted upstream (httpx MockTransport): size, depth, ids, memory."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import AsyncIterator, Iterable

import httpx
import orjson
import pytest

from bridge.credentials import Credentials
from bridge.errors import ResourceExhausted
from bridge.platform.client import PlatformClient, UpstreamLimits

CREDS = Credentials(api_key="k", organization_id="org")
LIMIT = 64 * 1024


class Body(httpx.AsyncByteStream):
    """Sends the pieces one by one, made as they are sent (a large body never sits in memory whole)."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._pieces = pieces

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            yield piece


async def read(pieces: Iterable[bytes], limit: int = LIMIT) -> list[tuple[int, dict[str, object]]]:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=Body(pieces)
        )
    )
    platform = PlatformClient(
        base_url="http://p.test",
        events_base_url="http://p.test",
        org_in_rest_path=False,
        transport=transport,
        stream_transport=transport,
        limits=UpstreamLimits(event_bytes=limit, json_depth=32),
    )
    async with platform, platform.stream_events("t1", CREDS) as events:
        return [item async for item in events]


def nested(depth: int) -> bytes:
    """An envelope nesting objects `depth` levels deep, the envelope itself included."""
    data: object = "leaf"
    for _ in range(depth - 1):
        data = {"k": data}
    return orjson.dumps({"type": "custom", "data": data} if depth > 1 else {"type": "custom"})


async def test_an_event_at_the_size_limit_passes_and_one_byte_more_is_refused() -> None:
    payload = b'{"pad":"' + b"x" * (LIMIT - 10) + b'"}'
    assert len(payload) == LIMIT
    assert len(await read([b"id: 1\ndata: " + payload + b"\n\n"])) == 1
    with pytest.raises(ResourceExhausted) as refused:
        await read([b"id: 1\ndata: " + payload[:-1] + b'x"}' + b"\n\n"])
    assert refused.value.reason == "UPSTREAM_EVENT_TOO_LARGE"
    assert refused.value.metadata == {"route": "task_events", "limit": str(LIMIT)}


async def test_data_lines_count_together() -> None:
    line = b"data: " + b"x" * 1000 + b"\n"
    with pytest.raises(ResourceExhausted, match="larger than"):
        await read([b"id: 1\n" + line * (LIMIT // 1000 + 1) + b"\n"])


async def test_a_stream_without_newlines_is_refused_and_memory_returns_to_baseline() -> None:
    # 16 MiB in 64 KiB pieces, never a newline: only a bound on the unterminated line stops it.
    endless = (b"data: " if n == 0 else b"x" * 65536 for n in range(256))
    limit = 1024 * 1024
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        with pytest.raises(ResourceExhausted) as refused:
            await read(endless, limit)
        assert refused.value.reason == "UPSTREAM_EVENT_TOO_LARGE"
        del refused
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - baseline < 4 * limit
    # What stays is the error and the last piece read, not the megabyte that was buffered.
    assert current - baseline < limit // 4


async def test_json_at_the_depth_limit_passes_and_deeper_is_refused() -> None:
    assert len(await read([b"id: 1\ndata: " + nested(32) + b"\n\n"])) == 1
    with pytest.raises(ResourceExhausted) as refused:
        await read([b"id: 1\ndata: " + nested(33) + b"\n\n"])
    assert refused.value.reason == "UPSTREAM_JSON_TOO_DEEP"
    assert refused.value.metadata == {"route": "task_events", "limit": "32"}


async def test_ids_beyond_uint64_are_treated_as_absent() -> None:
    event = b'data: {"type":"x"}\n\n'
    pieces = [
        b"id: 18446744073709551615\n" + event,  # the largest uint64: a sequence
        b"id: 7\n" + event,
        b"id: 18446744073709551616\n" + event,  # one more: counted on by position
        b"id: 99999999999999999999999999\n" + event,
        b"id: -3\n" + event,
    ]
    assert [sequence for sequence, _ in await read(pieces)] == [2**64 - 1, 7, 8, 9, 10]

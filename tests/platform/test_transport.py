"""The platform client on its own transport against a hostile upstream: framing, limits, slots, retries.

Every answer here is written byte for byte by `tests.platform.hostile.HostileServer` on a real socket; the
client under test is the one the bridge builds (`PlatformClient` over two `HttpTransport` pools).
"""

from __future__ import annotations

import asyncio
import gzip
import resource
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import pytest

from bridge.credentials import Credentials
from bridge.errors import (
    BridgeError,
    DeadlineExceeded,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from bridge.platform.client import PlatformClient, UpstreamLimits
from bridge.platform.transport import HttpTransport
from tests.platform.hostile import HostileServer, Writer, json_response

CREDS = Credentials(api_key="test-key", organization_id="org")
TASK = orjson.dumps({"id": "t1", "status": "completed"})


@asynccontextmanager
async def client_for(
    server: HostileServer, *, unary_slots: int = 100, stream_slots: int = 100, **limits: float
) -> AsyncIterator[tuple[PlatformClient, HttpTransport, HttpTransport]]:
    unary = HttpTransport(max_connections=unary_slots, keepalive_expiry=4.0)
    streams = HttpTransport(max_connections=stream_slots)
    client = PlatformClient(
        base_url=server.url,
        events_base_url=server.url,
        org_in_rest_path=False,
        transport=unary,
        stream_transport=streams,
        limits=UpstreamLimits(**limits),  # type: ignore[arg-type]
    )
    async with client:
        yield client, unary, streams


async def failure(call: asyncio.Future[object] | object) -> BridgeError:
    with pytest.raises(BridgeError) as raised:
        await call  # type: ignore[misc]
    return raised.value


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: two\r\n\r\n{}", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\n{}\r\n0\r\n\r\n", "chunk size"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            "Transfer-Encoding",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            "",
        ),
        (b"HTTP/1.1 abc OK\r\n\r\n", "status"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", ""),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", "switched"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", "64 KiB"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 150 + b"Content-Length: 0\r\n\r\n", "headers"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", "end"),
    ],
)
async def test_malformed_answers_are_unavailable_and_free_their_slot(answer: bytes, problem: str) -> None:
    async with HostileServer(lambda head: (answer, True)) as server, client_for(server) as (client, unary, _):
        error = await failure(client.get_task("t1", CREDS))
        assert isinstance(error, Unavailable)
        assert error.reason == "UPSTREAM_CONNECTION_LOST"
        assert problem in error.message
        assert unary.pool.leased == 0


async def test_a_thousand_malformed_answers_leak_no_slot() -> None:
    bad = iter(range(1_000))

    def answer(head: bytes) -> tuple[bytes, bool]:
        if next(bad, None) is not None:
            return b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", True
        return json_response(TASK), False

    async with (
        HostileServer(answer) as server,
        client_for(server, unary_slots=10, stream_slots=10) as (client, unary, streams),
    ):
        for _ in range(500):
            await failure(client.get_task("t1", CREDS))
        for _ in range(500):
            with pytest.raises(Unavailable):
                async with client.stream_events("t1", CREDS):
                    pass
        assert (unary.pool.leased, streams.pool.leased) == (0, 0)
        started = time.monotonic()
        results = await asyncio.gather(*(client.get_task("t1", CREDS, budget=2.0) for _ in range(100)))
        assert all(result["id"] == "t1" for result in results)
        assert time.monotonic() - started < 2.0


async def test_interim_responses_are_skipped() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n"
    async with (
        HostileServer(lambda head: (interim + json_response(TASK), False)) as server,
        client_for(server) as (client, _, _),
    ):
        assert (await client.get_task("t1", CREDS))["id"] == "t1"


async def test_a_reused_connection_lost_unanswered_resends_a_get_but_never_a_delete() -> None:
    def answer(head: bytes) -> tuple[bytes, bool]:
        # Every second request on a connection meets it closing: the first is answered, kept alive.
        if head.startswith(b"DELETE") or len(server.requests) % 2 == 1:
            return json_response(TASK), False
        return b"", True

    async with HostileServer(answer) as server, client_for(server) as (client, _, _):
        await client.get_task("t1", CREDS)
        assert (await client.get_task("t1", CREDS))["id"] == "t1"
        resent = [head for head in server.requests if head.startswith(b"GET")]
        assert len(resent) == 3

    def drop_second(head: bytes) -> tuple[bytes, bool]:
        return (json_response(TASK), False) if len(dropping.requests) == 1 else (b"", True)

    async with HostileServer(drop_second) as dropping, client_for(dropping) as (client, _, _):
        await client.get_task("t1", CREDS)
        error = await failure(client.stop_task("t1", CREDS))
        assert isinstance(error, Unavailable)
        assert [head.split(b" ")[0] for head in dropping.requests] == [b"GET", b"DELETE"]


async def test_a_header_value_with_a_line_break_never_reaches_the_wire() -> None:
    async with (
        HostileServer(lambda head: (json_response(TASK), False)) as server,
        client_for(server) as (client, unary, _),
    ):
        forged = Credentials(api_key="k\r\nDELETE /agent-execution/other HTTP/1.1", organization_id="org")
        error = await failure(client.get_task("t1", forged))
        assert isinstance(error, InvalidArgument)
        assert "DELETE" not in error.message
        assert server.requests == []
        assert unary.pool.leased == 0


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def test_a_gzip_bomb_is_refused_within_the_body_limit() -> None:
    squeezer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"\0" * (1 << 20)
    bomb = b"".join(squeezer.compress(zeros) for _ in range(300)) + squeezer.flush()
    assert len(bomb) < 400_000
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
    answer = head + b"Content-Length: %d\r\n\r\n" % len(bomb) + bomb
    before = _rss_mb()
    async with HostileServer(lambda _: (answer, False)) as server, client_for(server) as (client, unary, _):
        error = await failure(client.get_task("t1", CREDS))
        assert isinstance(error, ResourceExhausted)
        assert error.reason == "UPSTREAM_BODY_TOO_LARGE"
        assert error.metadata["limit"] == str(8 * 1024 * 1024)
        assert unary.pool.leased == 0
    assert _rss_mb() - before < 60


async def test_a_compressed_answer_within_the_limit_is_read() -> None:
    body = gzip.compress(TASK)
    answer = json_response(body, extra=b"Content-Encoding: gzip\r\n")
    async with HostileServer(lambda _: (answer, False)) as server, client_for(server) as (client, _, _):
        assert (await client.get_task("t1", CREDS))["id"] == "t1"


async def test_an_oversized_plain_body_is_refused() -> None:
    body = b'{"id": "' + b"x" * 40_000 + b'"}'
    async with (
        HostileServer(lambda _: (json_response(body), False)) as server,
        client_for(server, body_bytes=16_384) as (client, unary, _),
    ):
        error = await failure(client.get_task("t1", CREDS))
        assert isinstance(error, ResourceExhausted)
        assert error.metadata == {"route": "get_task", "limit": "16384"}
        assert unary.pool.leased == 0


async def test_json_nested_past_the_limit_is_a_clear_error() -> None:
    deep = b'{"id": "t1", "result": ' + b"[" * 60 + b"]" * 60 + b"}"
    async with (
        HostileServer(lambda _: (json_response(deep), False)) as server,
        client_for(server) as (client, _, _),
    ):
        error = await failure(client.get_task("t1", CREDS))
        assert isinstance(error, ResourceExhausted)
        assert error.reason == "UPSTREAM_JSON_TOO_DEEP"


@pytest.mark.parametrize(
    "value", [b"1e300", b"inf", b"99999999999999999999999", b"Fri, 31 Dec 9999 23:59:59 GMT"]
)
async def test_retry_after_is_capped(value: bytes) -> None:
    answer = json_response(b'{"detail": "slow down"}', status=429, extra=b"Retry-After: " + value + b"\r\n")
    async with HostileServer(lambda _: (answer, False)) as server, client_for(server) as (client, _, _):
        error = await failure(client.get_task("t1", CREDS))
        assert isinstance(error, ResourceExhausted)
        assert error.retry_after == 3600.0
        assert error.to_rpc_status().details  # the RetryInfo duration is representable


async def test_a_slowloris_head_ends_at_the_deadline() -> None:
    async def trickle(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(200):
            writer.write(b"X")
            await writer.drain()
            await asyncio.sleep(0.02)

    def answer(head: bytes) -> tuple[Writer, bool]:
        return trickle, True

    async with HostileServer(answer) as server, client_for(server) as (client, unary, _):
        started = time.monotonic()
        error = await failure(client.get_task("t1", CREDS, budget=0.3))
        assert isinstance(error, DeadlineExceeded)
        assert time.monotonic() - started < 1.0
        assert unary.pool.leased == 0


async def test_platform_error_text_is_bounded() -> None:
    detail = orjson.dumps({"detail": "x" * 100_000})
    async with (
        HostileServer(lambda _: (json_response(detail, status=400), False)) as server,
        client_for(server) as (client, _, _),
    ):
        error = await failure(client.get_task("t1", CREDS))
        assert isinstance(error, InvalidArgument)
        assert len(error.message) < 500


async def test_a_never_ending_header_is_cut_off() -> None:
    async def endless(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nX-Endless: ")
        for _ in range(100):
            writer.write(b"a" * 4096)
            await writer.drain()

    async with HostileServer(lambda _: (endless, True)) as server, client_for(server) as (client, unary, _):
        error = await failure(client.get_task("t1", CREDS))
        assert isinstance(error, Unavailable)
        assert "64 KiB" in error.message
        assert unary.pool.leased == 0

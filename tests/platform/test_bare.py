"""The bare transport over real sockets: framings, keep-alive, errors, limits, TLS, the platform client."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from aiohttp import web

from bridge.credentials import Credentials
from bridge.errors import NotFound, Unavailable
from bridge.localplatform import LocalPlatform
from bridge.platform.bare import BareTransport
from bridge.platform.client import PlatformClient
from bridge.platform.transport import AiohttpTransport
from tests.ops.certs import Pki, make_pki

Reply = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


class _TcpServer:
    """A TCP server on a free loopback port for the block; subclasses answer each connection in `_handle`."""

    server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        self.server.close()


class RawServer(_TcpServer):
    """A TCP server answering every connection with `reply`: the wire bytes are the test's to choose."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[bytes] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self.requests.append(await _read_request(reader))
            await self.reply(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the test ended while this connection was held
        finally:
            writer.close()


def answer(*parts: bytes, pause: float = 0.0, close: bool = True) -> Reply:
    """A reply writing `parts` one by one (with `pause` between), then closing or holding the connection."""

    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for part in parts:
            writer.write(part)
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
        if not close:
            await reader.read()

    return reply


def client(**options: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=BareTransport(**options),  # type: ignore[arg-type]
        timeout=httpx.Timeout(5.0),
    )


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


async def test_a_chunked_body_split_anywhere_arrives_whole() -> None:
    body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n"
    # Every byte in its own write: chunk sizes, data and CRLFs all fall across reads.
    parts = [CHUNKED_HEAD, *(body[i : i + 1] for i in range(len(body)))]
    async with (
        RawServer(answer(*parts, pause=0.001)) as url,
        client() as http,
        http.stream("GET", f"{url}/events", headers={"x-api-key": "k"}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        received = [piece async for piece in response.aiter_raw()]
    assert b"".join(received) == b"hello, world"


async def test_the_request_carries_its_method_path_query_and_headers() -> None:
    server = RawServer(answer(b"HTTP/1.1 204 No Content\r\n\r\n"))
    async with server as url, client() as http:
        response = await http.get(f"{url}/a%2Fb/events?x=1", headers={"x-api-key": "key-1"})
    assert response.status_code == 204
    request = server.requests[0]
    assert request.startswith(b"GET /a%2Fb/events?x=1 HTTP/1.1\r\n")
    assert b"\r\nx-api-key: key-1\r\n" in request
    assert b"\r\nhost: 127.0.0.1:" in request.lower()


async def test_content_length_and_close_delimited_bodies() -> None:
    sized = answer(
        b"HTTP/1.1 404 Not Found\r\ncontent-length: 27\r\n\r\n", b'{"detail":"Task not ', b'found"}'
    )
    async with RawServer(sized) as url, client() as http:
        response = await http.get(f"{url}/x")
    assert (response.status_code, response.json()) == (404, {"detail": "Task not found"})
    assert response.reason_phrase == "Not Found"

    until_close = answer(b"HTTP/1.1 200 OK\r\n\r\n", b"data: 1\n\n", b"data: 2\n\n")
    async with RawServer(until_close) as url, client() as http:
        response = await http.get(f"{url}/x")
    assert response.content == b"data: 1\n\ndata: 2\n\n"


async def test_a_body_cut_short_is_a_protocol_error() -> None:
    for parts in (
        (CHUNKED_HEAD, b"5\r\nhel"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n", b"abc"),
        (b"HTTP/1.1 200 OK\r\ncontent-",),
    ):
        async with RawServer(answer(*parts)) as url, client() as http:
            with pytest.raises(httpx.RemoteProtocolError):
                await http.get(f"{url}/x")


async def test_malformed_answers_are_protocol_errors() -> None:
    for parts in (
        (b"SMTP ready\r\n\r\n",),
        (CHUNKED_HEAD, b"zz\r\n"),
        (CHUNKED_HEAD, b"3\r\nabcXY"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: many\r\n\r\n",),
    ):
        async with RawServer(answer(*parts)) as url, client() as http:
            with pytest.raises(httpx.RemoteProtocolError):
                await http.get(f"{url}/x")


async def test_refused_connections_and_silent_servers_fail_with_their_httpx_types() -> None:
    async with RawServer(answer()) as url:
        pass  # closed: nothing listens on its port any more
    async with client() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"{url}/x")
    silent = answer(close=False)
    async with RawServer(silent) as url, client() as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(f"{url}/x", timeout=httpx.Timeout(5.0, read=0.1))


async def test_streams_beyond_the_limit_wait_for_one_to_close() -> None:
    held = answer(CHUNKED_HEAD, b"1\r\na\r\n", close=False)
    async with RawServer(held) as url, client(max_connections=1) as http:
        first = await http.send(http.build_request("GET", f"{url}/1"), stream=True)
        second = asyncio.ensure_future(http.send(http.build_request("GET", f"{url}/2"), stream=True))
        await asyncio.sleep(0.1)
        assert not second.done()
        await first.aclose()
        response = await asyncio.wait_for(second, 5)
        await response.aclose()


async def test_a_slow_reader_pauses_the_socket_and_still_gets_everything() -> None:
    big = b"x" * 4096
    parts = [CHUNKED_HEAD, *(b"1000\r\n" + big + b"\r\n" for _ in range(64)), b"0\r\n\r\n"]
    total = 0
    async with (
        RawServer(answer(*parts)) as url,
        client(read_limit=8192) as http,
        http.stream("GET", f"{url}/x") as response,
    ):
        async for piece in response.aiter_raw():
            total += len(piece)
            await asyncio.sleep(0.001)
    assert total == 64 * 4096


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def test_https_is_verified_against_the_given_context(pki: Pki) -> None:
    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: {}\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/events", events)
    runner = web.AppRunner(app)
    await runner.setup()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(pki.server.cert, pki.server.key)
    site = web.TCPSite(runner, "localhost", 0, ssl_context=server_tls)
    await site.start()
    port = runner.addresses[0][1]
    try:
        trusting = ssl.create_default_context(cafile=str(pki.ca))
        async with client(verify=trusting) as http:
            response = await http.get(f"https://localhost:{port}/events")
            assert response.content == b"data: {}\n\n"
        async with client(verify=ssl.create_default_context(cafile=str(pki.wrong_ca))) as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(f"https://localhost:{port}/events")
    finally:
        await runner.cleanup()


@pytest.fixture
async def platform() -> AsyncIterator[LocalPlatform]:
    running = LocalPlatform()
    await running.start(host="127.0.0.1", port=0)
    yield running
    await running.stop()


async def test_the_platform_client_streams_a_task_over_it(platform: LocalPlatform) -> None:
    transport = BareTransport()
    async with PlatformClient(
        base_url=platform.url,
        events_base_url=platform.url,
        org_in_rest_path=False,
        stream_transport=transport,
    ) as platform_client:
        creds = Credentials(api_key="k", organization_id=platform.organization_id)
        task = await platform_client.create_task(
            "demo-agent", {"input": {"text": "hi"}, "events_streaming": True}, {}, creds
        )
        types = []
        async with platform_client.stream_events(task["id"], creds) as stream:
            async for sequence, envelope in stream:
                types.append((sequence, envelope["type"]))
        assert types[0] == (1, "task_created")
        assert types[-1][1] == "task_finished"
        assert [sequence for sequence, _ in types] == list(range(1, len(types) + 1))
        with pytest.raises(NotFound):
            async with platform_client.stream_events("no-such-task", creds):
                pass
    assert not transport._pool.connections  # every connection went with its response


async def test_a_platform_gone_mid_stream_is_unavailable() -> None:
    cut = answer(CHUNKED_HEAD, b'13\r\nid: 1\ndata: {"a":1}\n\n\r\n')
    async with (
        RawServer(cut) as url,
        PlatformClient(
            base_url=url,
            events_base_url=url,
            org_in_rest_path=False,
            stream_transport=BareTransport(),
        ) as platform_client,
    ):
        creds = Credentials(api_key="k", organization_id="org")
        with pytest.raises(Unavailable):
            async with platform_client.stream_events("t1", creds) as stream:
                assert [sequence async for sequence, _ in stream] == [1]


def test_it_runs_on_uvloop_too() -> None:
    """The bridge serves on uvloop, whose transports are not asyncio's classes."""
    import uvloop

    async def stream_one() -> list[str]:
        running = LocalPlatform()
        await running.start(host="127.0.0.1", port=0)
        try:
            async with PlatformClient(
                base_url=running.url,
                events_base_url=running.url,
                org_in_rest_path=False,
                stream_transport=BareTransport(),
            ) as platform_client:
                creds = Credentials(api_key="k", organization_id=running.organization_id)
                task = await platform_client.create_task(
                    "demo-agent", {"input": {"text": "hi"}, "events_streaming": True}, {}, creds
                )
                async with platform_client.stream_events(task["id"], creds) as stream:
                    return [str(envelope["type"]) async for _, envelope in stream]
        finally:
            await running.stop()

    types = uvloop.run(stream_one())
    assert types[0] == "task_created"
    assert types[-1] == "task_finished"


async def test_a_stream_the_aiohttp_transport_read_whole_is_still_parsed(platform: LocalPlatform) -> None:
    """A finished task's short stream may come with its headers: the aiohttp transport reads it whole."""
    async with PlatformClient(
        base_url=platform.url,
        events_base_url=platform.url,
        org_in_rest_path=False,
        stream_transport=AiohttpTransport(max_connections=10, keepalive_expiry=0.0),
    ) as platform_client:
        creds = Credentials(api_key="k", organization_id=platform.organization_id)
        task = await platform_client.create_task(
            "demo-agent", {"input": {"text": "hi"}, "events_streaming": True}, {}, creds
        )
        first = []
        async with platform_client.stream_events(task["id"], creds) as stream:
            first = [envelope["type"] async for _, envelope in stream]
        again = []
        async with platform_client.stream_events(task["id"], creds) as stream:
            again = [envelope["type"] async for _, envelope in stream]
    assert first == again
    assert first[-1] == "task_finished"


class KeepAliveServer(_TcpServer):
    """An HTTP/1.1 server answering requests on each connection with a JSON count of the requests so far.

    After `answers` answers on a connection (0: no limit) it closes it, right away or, with `drop_next`,
    once the next request has arrived (unanswered: the race of a server closing an idle connection).
    """

    def __init__(
        self, *, answers: int = 0, drop_next: bool = False, head: bytes = b"HTTP/1.1 200 OK"
    ) -> None:
        self.answers = answers
        self.drop_next = drop_next
        self.head = head
        self.accepted = 0
        self.closed = 0
        self.requests: list[bytes] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        answered = 0
        try:
            while True:
                if self.answers and answered == self.answers and not self.drop_next:
                    break
                head = await _read_request(reader)
                length = 0
                for line in head.lower().split(b"\r\n"):
                    if line.startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                self.requests.append(head + await reader.readexactly(length))
                if self.answers and answered == self.answers:
                    break
                body = b'{"n": %d}' % len(self.requests)
                writer.write(self.head + b"\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
                answered += 1
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self.closed += 1
            writer.close()


async def test_sequential_requests_reuse_one_keep_alive_connection() -> None:
    server = KeepAliveServer()
    async with server as url, client(keepalive_expiry=5.0) as http:
        for n in range(1, 4):
            response = await http.post(f"{url}/v1/tasks", json={"input": n})
            assert response.json() == {"n": n}
    assert server.accepted == 1
    assert server.requests[2].endswith(b'{"input":3}')

    streams = KeepAliveServer()
    async with streams as url, client() as http:  # no keep-alive: a connection per request
        for _ in range(3):
            await http.post(f"{url}/v1/tasks", json={})
    assert streams.accepted == 3


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    server = KeepAliveServer(answers=1)
    async with server as url, client(keepalive_expiry=5.0) as http:
        assert (await http.post(f"{url}/x", json={})).json() == {"n": 1}
        for _ in range(100):  # until the server's close reached the idle connection
            if server.closed:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert (await http.post(f"{url}/x", json={})).json() == {"n": 2}
    assert (server.accepted, len(server.requests)) == (2, 2)


async def test_an_idempotent_request_a_reused_connection_lost_unanswered_is_sent_once_more() -> None:
    server = KeepAliveServer(answers=1, drop_next=True)
    async with server as url, client(keepalive_expiry=5.0) as http:
        assert (await http.post(f"{url}/x", json={"n": 1})).json() == {"n": 1}
        # The DELETE reaches the old connection, which closes unanswered; a new one answers it.
        assert (await http.delete(f"{url}/x")).json() == {"n": 3}
    assert server.accepted == 2
    assert server.requests[1] == server.requests[2]


async def test_a_post_a_reused_connection_lost_unanswered_is_not_sent_again() -> None:
    server = KeepAliveServer(answers=1, drop_next=True)
    async with server as url, client(keepalive_expiry=5.0) as http:
        assert (await http.post(f"{url}/x", json={"n": 1})).json() == {"n": 1}
        # The platform may have acted on it: the failure surfaces rather than a second create.
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(f"{url}/x", json={"n": 2})
    assert len(server.requests) == 2

    # A new connection lost so is the server's answer: not sent again.
    refusing = RawServer(answer())  # reads the request, closes unanswered
    async with refusing as url, client(keepalive_expiry=5.0) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(f"{url}/x", json={})
    assert len(refusing.requests) == 1


async def test_a_body_not_read_to_its_end_closes_its_connection() -> None:
    server = KeepAliveServer()
    async with server as url, client(keepalive_expiry=5.0) as http:
        async with http.stream("POST", f"{url}/x", json={}) as response:
            assert response.status_code == 200  # the body is left unread
        await http.post(f"{url}/x", json={})
    assert server.accepted == 2

    streamed = RawServer(answer(CHUNKED_HEAD, b"1\r\na\r\n", close=False))
    async with streamed as url, client(keepalive_expiry=5.0) as http:
        async with http.stream("GET", f"{url}/events") as response:
            async for _ in response.aiter_raw():
                break  # an event stream left early
        await asyncio.sleep(0.05)
    assert len(streamed.requests) == 1


async def test_connection_close_and_http_1_0_answers_are_not_kept() -> None:
    for head in (b"HTTP/1.1 200 OK\r\nconnection: close", b"HTTP/1.0 200 OK"):
        server = KeepAliveServer(head=head)
        async with server as url, client(keepalive_expiry=5.0) as http:
            await http.post(f"{url}/x", json={})
            await http.post(f"{url}/x", json={})
        assert server.accepted == 2, head


async def test_idle_connections_expire() -> None:
    server = KeepAliveServer()
    transport = BareTransport(keepalive_expiry=0.1)
    async with server as url, httpx.AsyncClient(transport=transport) as http:
        await http.post(f"{url}/x", json={})
        assert len(transport._pool.connections) == 1
        for _ in range(100):  # the transport closes the expired connection by itself
            if server.closed:
                break
            await asyncio.sleep(0.01)
        assert server.closed == 1
        assert not transport._pool.connections
        await http.post(f"{url}/x", json={})
    assert server.accepted == 2


async def test_an_idle_connection_makes_room_under_the_limit() -> None:
    first, second = KeepAliveServer(), KeepAliveServer()
    async with first as one, second as two, client(keepalive_expiry=5.0, max_connections=1) as http:
        await http.post(f"{one}/x", json={})
        await asyncio.wait_for(http.post(f"{two}/x", json={}), 2)
        await asyncio.wait_for(http.post(f"{two}/x", json={}), 2)
    assert (first.accepted, second.accepted) == (1, 1)

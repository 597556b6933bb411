"""The aiohttp transport under httpx: requests, streamed bodies, the pool limit and httpx exception types."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from bridge.platform.transport import AiohttpTransport, unary_transport


class _Server:
    """A real aiohttp server on a free port, counting the connections open at once."""

    def __init__(self) -> None:
        self.url = ""
        self.in_flight = 0
        self.most_in_flight = 0
        self.runner: web.AppRunner | None = None

    async def echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {"method": request.method, "body": body.decode(), "key": request.headers.get("x-api-key")},
            headers={"x-reply": "yes"},
        )

    async def slow(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(float(request.query.get("s", "0.02")))
        finally:
            self.in_flight -= 1
        return web.json_response({"ok": True})

    async def chunks(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for i in range(3):
            await response.write(f"data: {i}\n\n".encode())
            await asyncio.sleep(0.01)
        await response.write_eof()
        return response

    async def broken(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-length": "1000"})
        await response.prepare(request)
        await response.write(b"partial")
        assert request.transport is not None
        request.transport.close()
        return response

    async def gzipped(self, request: web.Request) -> web.Response:
        body = gzip.compress(b'{"packed": true}')
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        return web.Response(body=body, headers=headers)

    async def redirect(self, request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"location": "/echo"})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/echo", self.echo)
        app.router.add_get("/slow", self.slow)
        app.router.add_get("/chunks", self.chunks)
        app.router.add_get("/broken", self.broken)
        app.router.add_get("/redirect", self.redirect)
        app.router.add_get("/gzipped", self.gzipped)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[_Server]:
    running = _Server()
    await running.start()
    yield running
    await running.stop()


def _client(max_connections: int = 10, **timeouts: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=AiohttpTransport(max_connections=max_connections),
        timeout=httpx.Timeout(timeouts.get("read", 5.0), connect=timeouts.get("connect", 5.0)),
        follow_redirects=False,
    )


async def test_a_request_and_its_response_cross_unchanged(server: _Server) -> None:
    async with _client() as client:
        response = await client.post(f"{server.url}/echo", content=b'{"a":1}', headers={"x-api-key": "k"})
    assert response.status_code == 200
    assert response.headers["x-reply"] == "yes"
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"method": "POST", "body": '{"a":1}', "key": "k"}


async def test_a_streamed_body_arrives_piece_by_piece(server: _Server) -> None:
    async with _client() as client, client.stream("GET", f"{server.url}/chunks") as response:
        received = b"".join([chunk async for chunk in response.aiter_bytes()])
    assert received == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"


async def test_a_body_that_came_whole_is_read_and_its_connection_reused(server: _Server) -> None:
    async with _client(max_connections=1) as client:
        for n in range(3):
            response = await client.post(f"{server.url}/echo", content=str(n).encode())
            assert response.is_closed
            assert response.json()["body"] == str(n)


async def test_an_encoded_body_is_decoded_by_httpx(server: _Server) -> None:
    async with _client() as client:
        response = await client.get(f"{server.url}/gzipped")
    assert response.headers["content-encoding"] == "gzip"
    assert response.json() == {"packed": True}


async def test_redirects_come_back_as_they_are(server: _Server) -> None:
    async with _client() as client:
        response = await client.get(f"{server.url}/redirect")
    assert response.status_code == 302
    assert response.headers["location"] == "/echo"


async def test_the_pool_limit_bounds_concurrent_connections(server: _Server) -> None:
    async with _client(max_connections=2) as client:
        responses = await asyncio.gather(*(client.get(f"{server.url}/slow") for _ in range(6)))
    assert [r.status_code for r in responses] == [200] * 6
    assert server.most_in_flight == 2


async def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with _client() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")


async def test_a_slow_answer_is_a_read_timeout(server: _Server) -> None:
    async with _client(read=0.05) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"{server.url}/slow", params={"s": "0.3"})


async def test_a_connection_broken_mid_body_is_a_transport_error(server: _Server) -> None:
    async with _client() as client:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await client.get(f"{server.url}/broken")


async def test_the_httpx_kind_is_httpx_own_transport() -> None:
    transport = unary_transport("httpx", max_connections=5)
    assert isinstance(transport, httpx.AsyncHTTPTransport)
    await transport.aclose()

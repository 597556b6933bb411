"""The platform client's transport: httpx's transport API over HTTP/1.1 connections that llhttp parses.

One class serves both pools. Unary calls keep connections alive (`keepalive_expiry` > 0); event streams
take a connection each and close it with the stream, which is what lets ten thousand idle streams fit in
memory (about 3 KB each here, against about 39 KB through httpx on aiohttp; `bench/README.md`). Parsing is
llhttp's (`bridge.platform.connection`); slots are leases that cannot leak (`bridge.platform.pool`).

- `http` and `https` (verified against the system CAs or a given `ssl.SSLContext`);
- a proxy (`proxy=` URL, from `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`): https origins through a `CONNECT`
  tunnel, http origins with absolute-form requests; `user:password@` in the proxy URL is sent as Basic auth;
- the connect timeout (connection, tunnel and TLS handshake) and the read timeout (for the response head)
  from httpx's `timeout` extension; the body has none, as event streams may be idle as long as their task;
- every header value checked before it is written: no CR, LF, NUL or other control character;
- a GET or HEAD sent on a reused connection that ends before any byte of the response is sent once more on a
  new connection (a server may close an idle connection just as a request is written). POST, PUT, PATCH
  and DELETE are never re-sent: the transport cannot tell a server that never read them from one that acted
  and then dropped the connection;
- failures as the httpx exceptions of the same meaning: ConnectError / ConnectTimeout before the request is
  sent, ReadTimeout waiting for the head, RemoteProtocolError for a malformed or cut-short response,
  ReadError for a reset, LocalProtocolError for a request that cannot be written safely.
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
import weakref
from collections.abc import AsyncIterator
from typing import Final

import httpx

from bridge.platform.connection import Connection
from bridge.platform.pool import ConnectionPool, Lease, Origin

__all__ = ["HttpTransport"]

_RESENDABLE: Final = frozenset({"GET", "HEAD"})
# RFC 9110 field-value: visible characters, obs-text, space and tab; never CR, LF, NUL or other controls.
_UNSAFE_VALUE: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class HttpTransport(httpx.AsyncBaseTransport):
    """httpx's transport API over HTTP/1.1 connections (see the module docstring).

    `keepalive_expiry` is how long a connection given back stays idle for the next request to its origin;
    0 (for event streams) closes every connection with its response.
    """

    def __init__(
        self,
        *,
        max_connections: int = 10_000,
        verify: ssl.SSLContext | bool = True,
        keepalive_expiry: float = 0.0,
        proxy: str | None = None,
        read_limit: int = 256 * 1024,
    ) -> None:
        self._pool = ConnectionPool(max(max_connections, 0), keepalive_expiry)
        self._keep_alive = keepalive_expiry > 0
        self._tls = _tls_context(verify)
        self._proxy = httpx.URL(proxy) if proxy else None
        self._read_limit = read_limit
        self._open: weakref.WeakSet[Connection] = weakref.WeakSet()

    @property
    def pool(self) -> ConnectionPool:
        """The connection slots (tests read how many are taken)."""
        return self._pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}", request=request)
        origin: Origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        timeouts = request.extensions.get("timeout", {})
        message = self._message(request, await request.aread())
        fresh = False
        while True:
            lease = await self._pool.acquire(origin, fresh=fresh)
            try:
                connection = await self._exchange(lease, request, message, timeouts)
            except BaseException as error:
                lease.release(reusable=False)
                if lease.reused and request.method in _RESENDABLE and _unanswered(lease, error):
                    fresh = True
                    continue
                raise
            break
        head = connection.head
        assert head is not None
        return httpx.Response(
            head.status,
            headers=head.headers,
            stream=_Body(lease, connection, self._keep_alive),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": head.reason},
            request=request,
        )

    async def _exchange(
        self, lease: Lease, request: httpx.Request, message: bytes, timeouts: dict[str, float | None]
    ) -> Connection:
        """Write `message` on the lease's connection (opened if need be) and wait for the response head."""
        connection = lease.connection
        if connection is None:
            connection = lease.connection = await self._connect(request, timeouts.get("connect"))
        connection.expect_response()
        assert connection.transport is not None
        connection.transport.write(message)
        try:
            async with asyncio.timeout(timeouts.get("read")):
                while connection.head is None:
                    if connection.closed or connection.error is not None:
                        raise connection.ended_early("the response head")
                    await connection.receive()
        except TimeoutError:
            raise httpx.ReadTimeout("the server did not answer in time", request=request) from None
        return connection

    async def _connect(self, request: httpx.Request, seconds: float | None) -> Connection:
        url = request.url
        tls = url.scheme == "https"
        host, port = url.host, url.port or (443 if tls else 80)
        dial_host, dial_port = (self._proxy.host, self._proxy.port or 80) if self._proxy else (host, port)
        connection = Connection(self._read_limit)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(seconds):
                await loop.create_connection(
                    lambda: connection,
                    dial_host,
                    dial_port,
                    ssl=self._tls if tls and not self._proxy else None,
                    server_hostname=host if tls and not self._proxy else None,
                )
                self._open.add(connection)
                if tls and self._proxy:
                    await self._tunnel(connection, host, port)
        except TimeoutError:
            connection.close()
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out", request=request) from None
        except OSError as error:
            connection.close()
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {error}", request=request) from error
        except BaseException:
            connection.close()
            raise
        return connection

    async def _tunnel(self, connection: Connection, host: str, port: int) -> None:
        """`CONNECT host:port` through the proxy, then TLS to the origin inside the tunnel."""
        target = f"{host}:{port}".encode("ascii")
        lines = [b"CONNECT " + target + b" HTTP/1.1", b"Host: " + target, *self._proxy_auth()]
        connection.expect_response()
        assert connection.transport is not None
        connection.transport.write(b"\r\n".join(lines) + b"\r\n\r\n")
        while connection.head is None:
            if connection.closed or connection.error is not None:
                raise httpx.ConnectError(f"the proxy closed the tunnel to {host}:{port}")
            await connection.receive()
        if connection.head.status != 200:
            raise httpx.ConnectError(f"the proxy refused a tunnel to {host}:{port}: {connection.head.status}")
        connection.restart_parser()
        loop = asyncio.get_running_loop()
        tls = await loop.start_tls(connection.transport, connection, self._tls, server_hostname=host)
        if tls is None:
            raise httpx.ConnectError(f"TLS through the proxy to {host}:{port} did not start")
        connection.connection_made(tls)

    def _message(self, request: httpx.Request, body: bytes) -> bytes:
        """The request line, headers and body, each header checked (see `_checked`)."""
        url = request.url
        target = url.raw_path
        extra: list[bytes] = []
        if self._proxy is not None and url.scheme == "http":
            target = f"http://{url.netloc.decode('ascii')}".encode("ascii") + url.raw_path
            extra = self._proxy_auth()
        if _UNSAFE_VALUE.search(target) or b" " in target:
            raise httpx.LocalProtocolError("the request target holds a control character or a space")
        lines = [request.method.encode("ascii") + b" " + target + b" HTTP/1.1"]
        lines += [_checked(name, value) for name, value in request.headers.raw]
        return b"\r\n".join(lines + extra) + b"\r\n\r\n" + body

    def _proxy_auth(self) -> list[bytes]:
        proxy = self._proxy
        if proxy is None or not proxy.userinfo:
            return []
        return [b"Proxy-Authorization: Basic " + base64.b64encode(proxy.userinfo)]

    async def aclose(self) -> None:
        self._pool.close()
        for connection in list(self._open):
            connection.close()


class _Body(httpx.AsyncByteStream):
    """A response body read from its connection; closing it releases the lease (reusing the connection
    only when keep-alive is on and the body was read to its end)."""

    def __init__(self, lease: Lease, connection: Connection, keep_alive: bool) -> None:
        self._lease = lease
        self._connection = connection
        self._keep_alive = keep_alive

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        while True:
            piece = connection.take()
            if piece is not None:
                yield piece
            elif connection.complete:
                return
            elif connection.closed or connection.error is not None:
                raise connection.ended_early("the response body")
            else:
                await connection.receive()

    async def aclose(self) -> None:
        self._lease.release(reusable=self._keep_alive)


def _checked(name: bytes, value: bytes) -> bytes:
    if not _TOKEN.fullmatch(name):
        raise httpx.LocalProtocolError("a request header name is not a token")
    if _UNSAFE_VALUE.search(value):
        raise httpx.LocalProtocolError(
            f"the value of request header {name.decode('ascii')} holds a control character"
        )
    return name + b": " + value


def _unanswered(lease: Lease, error: BaseException) -> bool:
    """Whether a reused connection ended before any byte of the answer: the request may not have been read."""
    connection = lease.connection
    return (
        isinstance(error, httpx.TransportError)
        and connection is not None
        and connection.closed
        and not connection.received
    )


def _tls_context(verify: ssl.SSLContext | bool) -> ssl.SSLContext:
    if isinstance(verify, ssl.SSLContext):
        return verify
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context

"""A lean HTTP/1.1 transport for httpx, made for long-lived event streams; with keep-alive, for unary calls.

A StreamEvents call holds its upstream connection for as long as the task runs, so what a connection costs
is paid ten thousand times over by ten thousand idle streams. Through httpx on aiohttp an idle event stream
holds about 39 KB of the bridge's memory; on a bare `asyncio.Protocol` it holds under 3 KB, and opening it
costs a fraction of the CPU. `BareTransport` is that bare protocol behind httpx's transport API, so
`PlatformClient` reads it like any other httpx response:

- by default one new connection per request, closed with the response (a stream ends when its task ends);
- with `keepalive_expiry` > 0 (for unary calls) a response read to its end over HTTP/1.1, without
  `Connection: close`, gives its connection back to an idle pool per scheme, host and port; an idle
  connection expires after `keepalive_expiry` seconds, and one the server has closed is discarded. A body
  closed before its end (an event stream the reader left) aborts its connection, as without keep-alive;
- an idempotent request (GET, HEAD, PUT, DELETE, OPTIONS) that a reused connection loses before any byte of
  the response is sent once more on a new connection (see `BareTransport.handle_async_request`);
- `http` and `https` (verified against the system CAs or a given `ssl.SSLContext`), no proxies: the server
  chooses the aiohttp transport for a pool whose host a proxy applies to;
- the connect timeout and the read timeout (for the response head) from httpx's `timeout` extension; the body
  has none, as event streams may be idle for as long as their task is;
- bodies framed by `Transfer-Encoding: chunked`, `Content-Length` or the connection's close; each read of the
  socket becomes at most one body piece, so events reach the reader as they arrive;
- back-pressure: reading from the socket pauses while more than `read_limit` bytes wait for the reader;
- `max_connections` connections open at once, idle and busy (further requests wait for one to close or
  to be given back; an idle connection to another host is closed to make room);
- failures as the httpx exceptions of the same meaning: ConnectError / ConnectTimeout before the request is
  sent, ReadTimeout waiting for the head, RemoteProtocolError for a malformed or cut-short response, ReadError
  for a connection reset.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Final, cast

import httpx

__all__ = ["BareTransport"]

_MAX_HEAD_BYTES: Final = 64 * 1024
_MAX_CHUNK_LINE: Final = 1024
_NO_BODY_STATUSES: Final = frozenset({204, 304})
_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

_Origin = tuple[str, str, int]  # scheme, host, port


class _Connection(asyncio.Protocol):
    """Bytes received and not yet read, the end of the stream, and one waiter for more."""

    def __init__(self, read_limit: int) -> None:
        self.buffer = bytearray()
        self.closed = False
        self.error: Exception | None = None
        self.transport: asyncio.Transport | None = None
        self.received = False  # a byte arrived since the current request was sent
        self.expiry: asyncio.TimerHandle | None = None  # while idle in the pool
        self._read_limit = read_limit
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without deriving from it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received = True
        self.buffer += data
        if not self._paused and len(self.buffer) > self._read_limit and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is not None:
            self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self) -> None:
        """Wait until more bytes arrived or the connection ended (returns at once if it has ended)."""
        if self.closed:
            return
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def take(self, size: int | None = None) -> bytes:
        """Up to `size` buffered bytes (all of them when None), removed from the buffer."""
        if size is None or size >= len(self.buffer):
            data = bytes(self.buffer)
            self.buffer.clear()
        else:
            data = bytes(self.buffer[:size])
            del self.buffer[:size]
        if self._paused and len(self.buffer) <= self._read_limit and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    def ended_early(self, what: str) -> httpx.TransportError:
        """The exception for a connection that ended before `what` was complete."""
        if self.error is not None:
            return httpx.ReadError(f"the connection broke while reading {what}: {self.error}")
        return httpx.RemoteProtocolError(f"the server closed the connection before the end of {what}")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class _Body(httpx.AsyncByteStream):
    """A response body read from its connection; closing it gives the connection back or closes it.

    `done(reusable)` runs once, on close: reusable when keep-alive was allowed, the body was read to its end
    and nothing else arrived on the connection.
    """

    def __init__(
        self,
        connection: _Connection,
        framing: str,
        length: int,
        keep_alive: bool,
        done: Callable[[_Connection, bool], None],
    ) -> None:
        self._connection = connection
        self._framing = framing
        self._length = length
        self._keep_alive = keep_alive
        self._done: Callable[[_Connection, bool], None] | None = done
        self._complete = framing == "length" and length == 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._framing == "chunked":
            pieces = self._chunked()
        elif self._framing == "length":
            pieces = self._sized(self._length)
        else:
            pieces = self._until_close()
        async for piece in pieces:
            yield piece
        self._complete = True

    async def _sized(self, remaining: int) -> AsyncIterator[bytes]:
        connection = self._connection
        while remaining > 0:
            if not connection.buffer:
                if connection.closed:
                    raise connection.ended_early("the response body")
                await connection.receive()
                continue
            piece = connection.take(remaining)
            remaining -= len(piece)
            yield piece

    async def _until_close(self) -> AsyncIterator[bytes]:
        connection = self._connection
        while True:
            if connection.buffer:
                yield connection.take()
            elif connection.closed:
                if connection.error is not None:
                    raise connection.ended_early("the response body")
                return
            else:
                await connection.receive()

    async def _chunked(self) -> AsyncIterator[bytes]:
        """Chunk data as it arrives: one piece per socket read, however the chunks fall across reads."""
        connection = self._connection
        buffer = connection.buffer
        remaining = 0  # data bytes left in the current chunk
        expect_crlf = False  # the CRLF that follows a chunk's data is due
        while True:
            piece = bytearray()
            while True:
                if remaining:
                    if not buffer:
                        break
                    taken = min(remaining, len(buffer))
                    piece += buffer[:taken]
                    del buffer[:taken]
                    remaining -= taken
                    if remaining:
                        break
                    expect_crlf = True
                if expect_crlf:
                    if len(buffer) < 2:
                        break
                    if buffer[:2] != b"\r\n":
                        raise httpx.RemoteProtocolError("malformed chunked body: data not followed by CRLF")
                    del buffer[:2]
                    expect_crlf = False
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > _MAX_CHUNK_LINE:
                        raise httpx.RemoteProtocolError("malformed chunked body: chunk size line too long")
                    break
                size_text = bytes(buffer[:end]).split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise httpx.RemoteProtocolError(
                        f"malformed chunked body: bad chunk size {size_text[:20]!r}"
                    ) from None
                if size < 0:
                    raise httpx.RemoteProtocolError("malformed chunked body: negative chunk size")
                if size == 0:
                    # The last chunk: trailers (ignored) up to an empty line end the body.
                    if not await self._skip_trailers(end + 2):
                        raise connection.ended_early("the chunked trailer")
                    if piece:
                        yield bytes(piece)
                    return
                del buffer[: end + 2]
                remaining = size
            connection.take(0)  # resumes reading once the buffer has drained below the limit
            if piece:
                yield bytes(piece)
                continue
            if connection.closed:
                raise connection.ended_early("the chunked response body")
            await connection.receive()

    async def _skip_trailers(self, start: int) -> bool:
        connection = self._connection
        buffer = connection.buffer
        while True:
            end = buffer.find(b"\r\n", start)
            if end == start:
                del buffer[: end + 2]
                return True
            if end > start:
                start = end + 2
                continue
            if connection.closed:
                return False
            await connection.receive()

    async def aclose(self) -> None:
        done, self._done = self._done, None
        if done is not None:
            connection = self._connection
            reusable = self._keep_alive and self._complete and not connection.closed and not connection.buffer
            done(connection, reusable)


class _Pool:
    """Open connections, idle and busy, bounded by `limit` (0: unbounded); idle ones kept per origin.

    A slot is taken by `acquire` (an idle connection, or None and the right to open one) and given back by
    `give_back` (the connection goes idle) or `discard` (it is closed, or was never opened). `connections`
    holds every open connection, for `close_all`.
    """

    def __init__(self, limit: int, expiry: float) -> None:
        self.limit = limit
        self.expiry = expiry
        self.open = 0
        self.connections: set[_Connection] = set()
        self.idle: dict[_Origin, list[_Connection]] = {}  # oldest first
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self, origin: _Origin, fresh: bool = False) -> _Connection | None:
        """An idle connection to `origin` (unless `fresh`), or None and the right to open a new one."""
        while True:
            idle = None if fresh else self.idle.get(origin)
            while idle:
                connection = idle.pop()
                _stop_expiry(connection)
                if not connection.closed and not connection.buffer:
                    return connection
                self._close(connection)  # the server closed it, or spoke unasked, while it was idle
            if not self.limit or self.open < self.limit:
                self.open += 1
                return None
            if self._close_oldest_idle():
                continue
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # the slot this waiter was woken for goes to the next one
                raise

    def give_back(self, origin: _Origin, connection: _Connection) -> None:
        loop = asyncio.get_running_loop()
        connection.expiry = loop.call_later(self.expiry, self._expire, origin, connection)
        self.idle.setdefault(origin, []).append(connection)
        self._wake()

    def discard(self, connection: _Connection | None) -> None:
        """Close `connection` (None: one that was never opened) and give its slot back."""
        if connection is None:
            self.open -= 1
        else:
            self._close(connection)
        self._wake()

    def close_all(self) -> None:
        for connection in self.connections:
            _stop_expiry(connection)
            connection.close()
        self.connections.clear()
        self.idle.clear()
        self.open = 0

    def _close(self, connection: _Connection) -> None:
        connection.close()
        if connection in self.connections:
            self.connections.discard(connection)
            self.open -= 1

    def _expire(self, origin: _Origin, connection: _Connection) -> None:
        idle = self.idle.get(origin)
        if idle is not None and connection in idle:
            idle.remove(connection)
            connection.expiry = None
            self.discard(connection)

    def _close_oldest_idle(self) -> bool:
        for idle in self.idle.values():
            if idle:
                connection = idle.pop(0)
                _stop_expiry(connection)
                self._close(connection)
                return True
        return False

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


def _stop_expiry(connection: _Connection) -> None:
    if connection.expiry is not None:
        connection.expiry.cancel()
        connection.expiry = None


class BareTransport(httpx.AsyncBaseTransport):
    """httpx's transport API over bare HTTP/1.1 connections (see the module docstring).

    `keepalive_expiry` is how long a connection given back stays idle for the next request to its origin;
    0 (the default, for event streams) closes every connection with its response.
    """

    def __init__(
        self,
        *,
        max_connections: int = 10_000,
        verify: ssl.SSLContext | bool = True,
        read_limit: int = 256 * 1024,
        keepalive_expiry: float = 0.0,
    ) -> None:
        self._pool = _Pool(max(max_connections, 0), keepalive_expiry)
        if isinstance(verify, ssl.SSLContext):
            self._tls = verify
        else:
            self._tls = ssl.create_default_context()
            if not verify:
                self._tls.check_hostname = False
                self._tls.verify_mode = ssl.CERT_NONE
        self._read_limit = read_limit
        self._keep_alive = keepalive_expiry > 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` and read the response head; the body is read as the response is.

        An idempotent request sent on a reused (idle) connection that ends, closed or reset, before any
        byte of the response arrived is sent once more on a new connection. A server closes an idle
        keep-alive connection when it chooses to, and a request written just as it does so meets the closed
        socket; that race is what this retry is for. A POST is never sent twice (RFC 9112, 9.3.1): the
        transport cannot tell a server that never read it from one that acted on it and then dropped the
        connection, so that failure surfaces (the platform client reports the connection lost). The idle
        expiry, shorter than common server keep-alive timeouts, keeps the race rare. Only reused connections
        are retried, and only once; a new connection failing so is the server's answer.
        """
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}", request=request)
        tls = url.scheme == "https"
        origin = (url.scheme, url.host, url.port or (443 if tls else 80))
        timeouts = request.extensions.get("timeout", {})
        body = await request.aread() if request.method != "GET" else b""
        message = _head(request) + body
        pool = self._pool
        retried = False
        while True:
            connection = await pool.acquire(origin, fresh=retried)
            reused = connection is not None
            try:
                if connection is None:
                    connection = await self._connect(request, timeouts.get("connect"))
                    pool.connections.add(connection)
                connection.received = False
                assert connection.transport is not None
                connection.transport.write(message)
                status, reason, headers, version = await _read_head(connection, request, timeouts.get("read"))
            except BaseException as error:
                pool.discard(connection)
                retry = (
                    reused
                    and request.method in _IDEMPOTENT
                    and isinstance(error, httpx.TransportError)
                    and connection is not None
                    and connection.closed
                    and not connection.received
                )
                if retry:
                    retried = True
                    continue
                raise
            break
        framing, length = _framing(request.method, status, headers)
        keep_alive = (
            self._keep_alive
            and framing != "close"
            and status >= 200
            and version == b"HTTP/1.1"
            and not _asks_close(headers)
            and not _asks_close(request.headers.raw)
        )
        return httpx.Response(
            status,
            headers=headers,
            stream=_Body(connection, framing, length, keep_alive, self._done_with(origin)),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
            request=request,
        )

    def _done_with(self, origin: _Origin) -> Callable[[_Connection, bool], None]:
        def done(connection: _Connection, reusable: bool) -> None:
            if reusable:
                self._pool.give_back(origin, connection)
            else:
                self._pool.discard(connection)

        return done

    async def _connect(self, request: httpx.Request, seconds: float | None) -> _Connection:
        url = request.url
        tls = url.scheme == "https"
        port = url.port or (443 if tls else 80)
        connection = _Connection(self._read_limit)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(seconds):
                await loop.create_connection(
                    lambda: connection,
                    url.host,
                    port,
                    ssl=self._tls if tls else None,
                    server_hostname=url.host if tls else None,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(
                f"connecting to {url.host}:{port} timed out", request=request
            ) from None
        except OSError as error:
            raise httpx.ConnectError(
                f"cannot connect to {url.host}:{port}: {error}", request=request
            ) from error
        return connection

    async def aclose(self) -> None:
        self._pool.close_all()


def _head(request: httpx.Request) -> bytes:
    """The request line and headers (httpx has already added Host and, for a body, Content-Length)."""
    url = request.url
    lines = [b"%s %s HTTP/1.1" % (request.method.encode("ascii"), url.raw_path)]
    lines += [name + b": " + value for name, value in request.headers.raw]
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _read_head(
    connection: _Connection, request: httpx.Request, seconds: float | None
) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes]:
    """The status, reason phrase, headers and HTTP version of the response; the body stays in the buffer."""
    buffer = connection.buffer
    try:
        async with asyncio.timeout(seconds):
            while (end := buffer.find(b"\r\n\r\n")) < 0:
                if len(buffer) > _MAX_HEAD_BYTES:
                    raise httpx.RemoteProtocolError("the response head is too large", request=request)
                if connection.closed:
                    raise connection.ended_early("the response head")
                await connection.receive()
    except TimeoutError:
        raise httpx.ReadTimeout("the server did not answer in time", request=request) from None
    head = bytes(buffer[:end])
    del buffer[: end + 4]
    status_line, *header_lines = head.split(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise httpx.RemoteProtocolError(f"malformed status line {status_line[:40]!r}", request=request)
    headers: list[tuple[bytes, bytes]] = []
    for line in header_lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise httpx.RemoteProtocolError(f"malformed header line {line[:40]!r}", request=request)
        headers.append((name, value.strip()))
    reason = parts[2] if len(parts) > 2 else b""
    return int(parts[1]), reason, headers, parts[0]


def _asks_close(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the headers carry `Connection: close`."""
    return any(name.lower() == b"connection" and b"close" in value.lower() for name, value in headers)


def _framing(method: str, status: int, headers: list[tuple[bytes, bytes]]) -> tuple[str, int]:
    """How the body ends: ("chunked", 0), ("length", n) or ("close", 0); no body is ("length", 0)."""
    if method == "HEAD" or status in _NO_BODY_STATUSES or 100 <= status < 200:
        return "length", 0
    length: int | None = None
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"transfer-encoding" and value.lower().endswith(b"chunked"):
            return "chunked", 0
        if lowered == b"content-length":
            if not value.isdigit():
                raise httpx.RemoteProtocolError(f"malformed Content-Length {value[:20]!r}")
            length = int(value)
    if length is not None:
        return "length", length
    return "close", 0

"""An aiohttp transport for httpx: httpx's API on top of aiohttp's connection pool.

httpx's own pool (httpcore) degrades sharply under concurrency on one event loop: at 100 concurrent requests
it scans its connections for every request and wakes waiters one by one, so throughput falls to a fraction
of what one connection does and tail latency reaches a second (bench/results). aiohttp's connector keeps
that cost flat. `unary_transport("aiohttp", ...)` gives an `httpx.AsyncBaseTransport` that a client adopts
with one argument, `httpx.AsyncClient(transport=...)`; everything above the transport (requests, responses,
timeouts, exceptions) stays httpx's.

aiohttp's exceptions are translated to the httpx exception that means the same thing, so callers that sort
failures by httpx type (connection never opened vs broken mid-request vs timed out) keep working.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Literal

import aiohttp
import httpx
from aiohttp import hdrs

__all__ = ["AiohttpTransport", "TransportKind", "unary_transport"]

TransportKind = Literal["bare", "httpx", "aiohttp"]
"""The transports `--upstream-http` chooses between (`bare` is `bridge.platform.bare`)."""


@contextmanager
def _translated() -> Iterator[None]:
    """aiohttp failures as the httpx exceptions of the same meaning (most specific first)."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as error:
        raise httpx.ConnectTimeout(str(error) or "connect timed out") from error
    except aiohttp.SocketTimeoutError as error:
        raise httpx.ReadTimeout(str(error) or "read timed out") from error
    except aiohttp.ServerTimeoutError as error:
        raise httpx.ReadTimeout(str(error) or "timed out") from error
    except aiohttp.ClientConnectorError as error:
        raise httpx.ConnectError(str(error)) from error
    except aiohttp.ServerDisconnectedError as error:
        raise httpx.RemoteProtocolError(str(error) or "server disconnected") from error
    except aiohttp.ClientPayloadError as error:
        raise httpx.ReadError(str(error)) from error
    except aiohttp.ClientResponseError as error:
        raise httpx.RemoteProtocolError(str(error)) from error
    except aiohttp.ClientOSError as error:
        raise httpx.ReadError(str(error)) from error
    except aiohttp.InvalidURL as error:
        raise httpx.UnsupportedProtocol(str(error)) from error
    except aiohttp.ClientError as error:
        raise httpx.TransportError(str(error) or type(error).__name__) from error
    except TimeoutError as error:
        raise httpx.TimeoutException(str(error) or "timed out") from error


class _ResponseStream(httpx.AsyncByteStream):
    """The body of an aiohttp response, read as it arrives; closing it returns the connection to the pool."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _translated():
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests through one `aiohttp.ClientSession`, created on first use on the running loop.

    `verify` is httpx's: True checks certificates against the system CAs, an `ssl.SSLContext` against the
    CAs it trusts, False not at all. `proxy` is the HTTP proxy every request goes through (https URLs by
    CONNECT), or None; like httpx given a transport, the transport reads no proxy from the environment.
    """

    def __init__(
        self,
        *,
        max_connections: int | None,
        keepalive_expiry: float = 5.0,
        verify: ssl.SSLContext | bool = True,
        proxy: str | None = None,
    ) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._verify = verify
        self._proxy = proxy
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections or 0,
                keepalive_timeout=self._keepalive_expiry if self._keepalive_expiry > 0 else None,
                force_close=self._keepalive_expiry <= 0,
                # aiohttp's True is its default context on the system CAs, as httpx's is.
                ssl=self._verify,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                # httpx has already set every header the request needs.
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        content = await request.aread()
        with _translated():
            response = await self._get_session().request(
                request.method,
                str(request.url),
                headers=[
                    (name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw
                ],
                data=content or None,
                proxy=self._proxy,
                allow_redirects=False,
                compress=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        return _adopted(response)

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
            # Let aiohttp's connection close callbacks run before the loop may end.
            await asyncio.sleep(0)


def _adopted(response: aiohttp.ClientResponse) -> httpx.Response:
    """`response` as httpx's, its body read already when it all came with the headers (most unary answers).

    A complete body is handed over in one piece, its connection back in the pool at once; unless it is
    content-encoded (then httpx decodes it when it is read, as for any body), it is read here, which spares
    the reader httpx's asynchronous chunk iteration. Any other body streams as it arrives.
    """
    stream: httpx.AsyncByteStream
    complete = response.content.is_eof()
    if complete:
        try:
            with _translated():
                stream = httpx.ByteStream(response.content.read_nowait())
        finally:
            response.release()
    else:
        stream = _ResponseStream(response)
    adopted = httpx.Response(
        status_code=response.status,
        headers=list(response.raw_headers),
        stream=stream,
        extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode()},
    )
    if complete and hdrs.CONTENT_ENCODING not in response.headers:
        adopted.read()
    return adopted


def unary_transport(
    kind: Literal["httpx", "aiohttp"],
    *,
    max_connections: int,
    keepalive_expiry: float = 5.0,
    verify: ssl.SSLContext | bool = True,
    proxy: str | None = None,
) -> httpx.AsyncBaseTransport:
    """A pooled httpx client's transport: httpx's own (httpcore) or aiohttp's, verifying and proxied alike."""
    if kind == "aiohttp":
        return AiohttpTransport(
            max_connections=max_connections, keepalive_expiry=keepalive_expiry, verify=verify, proxy=proxy
        )
    return httpx.AsyncHTTPTransport(
        verify=verify,
        proxy=proxy,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
    )

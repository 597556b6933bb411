"""One HTTP/1.1 client connection: an `asyncio.Protocol` whose responses llhttp (through httptools) parses.

The bridge owns only the glue: bytes in, parser callbacks, a queue of body pieces for the reader, and
back-pressure. The grammar (status line, headers, `Content-Length`, chunked framing, duplicate or
conflicting framing headers) is llhttp's, the parser Node.js uses; its strict mode rejects what
`docs/upstream-http.md` lists. On top of it the connection:

- skips interim (1xx) responses and answers with the first final one; a 101 is an error (none is asked for);
- accepts no transfer coding but `chunked` (`gzip, chunked` would hand the reader undecoded bytes);
- bounds the response head (`MAX_HEAD_BYTES`, `MAX_HEADERS`): llhttp itself has no limit;
- treats any byte after a complete response as a reason never to reuse the connection;
- pauses reading while more than `read_limit` body bytes wait for the reader.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Final, cast

import httptools
import httpx

__all__ = ["MAX_HEADERS", "MAX_HEAD_BYTES", "Connection", "Head"]

MAX_HEAD_BYTES: Final = 64 * 1024
MAX_HEADERS: Final = 100


class Head:
    """The status, reason, headers and framing of a final response."""

    __slots__ = ("close_delimited", "headers", "keep_alive", "reason", "status")

    def __init__(self) -> None:
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.keep_alive = False
        self.close_delimited = False


class Connection(asyncio.Protocol):
    """The connection's state as the reader sees it: a head, body pieces, an end, or an error.

    One request at a time: `expect_response()` readies the parser state for the next response.
    """

    def __init__(self, read_limit: int) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.received = False  # a byte arrived since the current request was sent
        self.expiry: asyncio.TimerHandle | None = None  # while idle in the pool
        self.head: Head | None = None  # the final response's head, once complete
        self.complete = False  # the final response's body ended
        self.spoke_out_of_turn = False  # bytes arrived after a complete response, or while idle
        self.error: Exception | None = None
        self._read_limit = read_limit
        self._parser = httptools.HttpResponseParser(self)
        self._pieces: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._building: Head | None = None
        self._head_bytes = 0
        self._unparsed_head = 0
        self._framed = False
        self._awaiting = False

    # --- asyncio.Protocol ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without deriving from it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received = True
        if not self._awaiting or self.complete or self.error is not None:
            self.spoke_out_of_turn = True
            self._wake()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            self._fail(_protocol_error(error.__context__ or error))
        except httptools.HttpParserError as error:
            self._fail(_protocol_error(error))
        if self.head is None and self.error is None:
            # httptools buffers a header until it ends: a head trickled in unended is bounded here.
            self._unparsed_head += len(data)
            if self._unparsed_head > 2 * MAX_HEAD_BYTES:
                self._fail(httpx.RemoteProtocolError("the response head is larger than 64 KiB"))
        if self._buffered > self._read_limit and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._ended(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended(exc)

    # --- httptools callbacks ------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.head is not None:
            raise httpx.RemoteProtocolError("the server sent a second response")
        self._building = Head()
        self._framed = False

    def on_status(self, status: bytes) -> None:
        assert self._building is not None
        self._building.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        building = self._building
        assert building is not None
        if len(building.headers) >= MAX_HEADERS:
            raise httpx.RemoteProtocolError(f"the response has more than {MAX_HEADERS} headers")
        self._head_bytes += len(name) + len(value)
        if self._head_bytes > MAX_HEAD_BYTES:
            raise httpx.RemoteProtocolError("the response head is larger than 64 KiB")
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            if value.strip().lower() != b"chunked":
                raise httpx.RemoteProtocolError(f"unsupported Transfer-Encoding {value[:40]!r}")
            self._framed = True
        elif lowered == b"content-length":
            self._framed = True
        building.headers.append((name, value))

    def on_headers_complete(self) -> None:
        building = self._building
        assert building is not None
        status = self._parser.get_status_code()
        if status == 101:
            raise httpx.RemoteProtocolError("the server switched protocols unasked")
        if status < 200:
            return  # interim: its message completes at once and the final response follows
        building.status = status
        building.keep_alive = self._parser.get_http_version() == "1.1" and not _asks_close(building.headers)
        building.close_delimited = not self._framed and status not in (204, 304)
        self.head = building

    def on_body(self, body: bytes) -> None:
        self._pieces.append(body)
        self._buffered += len(body)

    def on_message_complete(self) -> None:
        if self.head is None:
            self._building = None  # an interim response ended; wait for the final one
            return
        self.complete = True

    # --- The reader's side --------------------------------------------------------------------------------

    def expect_response(self) -> None:
        """Ready for the response to a request about to be written."""
        self.received = False
        self.head = None
        self.complete = False
        self._building = None
        self._head_bytes = 0
        self._unparsed_head = 0
        self._awaiting = True

    def restart_parser(self) -> None:
        """A new parser, for the bytes after a proxy's answer to `CONNECT` (a tunnel has no body)."""
        self._parser = httptools.HttpResponseParser(self)
        self._pieces.clear()
        self._buffered = 0
        self.head = None
        self.complete = False
        self._awaiting = False

    def finish(self) -> None:
        """The current response is done with: later bytes are out of turn."""
        self._awaiting = False

    def take(self) -> bytes | None:
        """The next body piece, or None when none is buffered."""
        if not self._pieces:
            return None
        piece = self._pieces.popleft()
        self._buffered -= len(piece)
        if self._paused and self._buffered <= self._read_limit and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return piece

    async def receive(self) -> None:
        """Wait until something changed: more bytes parsed, the end, or an error."""
        if self.closed or self.error is not None:
            return
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def reusable(self) -> bool:
        """Whether the next request may use this connection."""
        head = self.head
        return (
            head is not None
            and head.keep_alive
            and self.complete
            and not self.closed
            and not self.spoke_out_of_turn
            and self.error is None
            and not self._pieces
        )

    def idle_and_sound(self) -> bool:
        """Whether an idle connection is still fit for a request (not closed, nothing arrived unasked)."""
        return not self.closed and not self.spoke_out_of_turn and self.error is None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def ended_early(self, what: str) -> httpx.TransportError:
        """The exception for a response that stopped before `what` was complete."""
        if self.error is not None and isinstance(self.error, httpx.TransportError):
            return self.error
        if self.error is not None:
            return httpx.ReadError(f"the connection broke while reading {what}: {self.error}")
        return httpx.RemoteProtocolError(f"the server closed the connection before the end of {what}")

    def _ended(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        if self.head is not None and self.head.close_delimited and exc is None and self.error is None:
            self.complete = True
        elif exc is not None and self.error is None:
            self.error = exc
        self._wake()

    def _fail(self, error: httpx.TransportError) -> None:
        if self.error is None:
            self.error = error
        self.close()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _protocol_error(error: BaseException) -> httpx.TransportError:
    if isinstance(error, httpx.TransportError):
        return error
    return httpx.RemoteProtocolError(f"malformed response: {str(error)[:120] or type(error).__name__}")


def _asks_close(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name.lower() == b"connection" and b"close" in value.lower() for name, value in headers)

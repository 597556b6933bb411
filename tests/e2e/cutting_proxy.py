"""A TCP proxy that cuts connections at random byte offsets of the answer, for event stream fault tests.

Each accepted connection is forwarded to the upstream. With probability `cut_probability` the proxy cuts the
answer after a random number of bytes, headers included: below one of `max_offsets`, picked at random (a
small bound cuts heads and first events often, a large one lets events larger than the small bound through),
and with probability
`finished_probability` right after the first `task_finished` event it forwards (the blank line that ends it).
A cut sends what came before it, then closes the socket (FIN) or resets it (RST), as a broken proxy would.
The random generator is the caller's, so a seed reproduces the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Final

__all__ = ["CuttingProxy"]

_FINISHED: Final = b'"type":"task_finished"'
_READ_SIZE: Final = 4096


class CuttingProxy:
    """Forwards to `upstream_host:upstream_port`, cutting answers; `url` once started (`async with`)."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        rng: random.Random,
        *,
        cut_probability: float = 0.9,
        max_offsets: tuple[int, ...] = (400, 4000),
        finished_probability: float = 0.3,
    ) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._rng = rng
        self._cut_probability = cut_probability
        self._max_offsets = max_offsets
        self._finished_probability = finished_probability
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0
        self.drops = 0
        """Answers cut before the upstream ended them."""
        self.drops_after_finished = 0
        """Answers cut right after a `task_finished` event."""

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        cut_at = None
        if self._rng.random() < self._cut_probability:
            cut_at = self._rng.randrange(self._rng.choice(self._max_offsets))
        after_finished = self._rng.random() < self._finished_probability
        reset = self._rng.random() < 0.5
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()
            self._tasks.discard(task)
            return
        requests = asyncio.create_task(_copy(reader, up_writer))
        try:
            cut = await self._answer(up_reader, writer, cut_at, after_finished)
        finally:
            requests.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await requests
            up_writer.transport.abort()
            self._tasks.discard(task)
        if cut and reset:
            writer.transport.abort()
        else:
            writer.close()

    async def _answer(
        self,
        up_reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        cut_at: int | None,
        after_finished: bool,
    ) -> bool:
        """Copy the answer; True when it was cut."""
        sent = 0
        seen = b""
        while True:
            data = await up_reader.read(_READ_SIZE)
            if not data:
                return False
            end = len(data)
            if cut_at is not None and sent + end > cut_at:
                end = cut_at - sent
            if after_finished:
                # Only the tail of what came before is kept: enough to find a marker split across reads.
                window = seen[-64:] + data[:end]
                found = window.find(_FINISHED)
                blank = window.find(b"\n\n", found) if found >= 0 else -1
                if blank >= 0:
                    end = blank + 2 - len(seen[-64:])
                    writer.write(data[:end])
                    await writer.drain()
                    self.drops += 1
                    self.drops_after_finished += 1
                    return True
                seen = window
            writer.write(data[:end])
            await writer.drain()
            sent += end
            if end < len(data):
                self.drops += 1
                return True


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(_READ_SIZE):
            writer.write(data)
            await writer.drain()
    # The client hung up: so does the proxy, or the upstream would hold the connection open.
    writer.close()

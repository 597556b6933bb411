"""A minimal, fast upstream: replays the local platform's exact responses over HTTP/1.1.

The bridge's figures must measure the bridge, not the platform it calls. The local platform validates every
body with pydantic and keeps real task state, so on a shared core it caps the rate long before the bridge
does. This responder answers the same routes with the bytes the local platform produced (captured by
`bench.capture`), with only the task id made unique (same length, so every response has the same size), and
costs a few microseconds per request.

Event streams are chosen by the task id the caller asks for:

- `burst-<n>-<anything>`: task_created, `n` chunk events, task_finished, written at once (events/s ceiling).
- `rate-<hz>-<n>-<anything>`: task_created, then `n` chunks at `hz` per second whose text is the wall-clock
  time (ns) of the write, then task_finished (event latency).
- `idle-<anything>`: task_created, then only keep-alive comments every 15 s until the caller goes away.
- anything else: the captured demo-agent run, then close.

Run: `python -m bench.responder --replay bench/replay.json [--port 0]`; prints `{"port": N}` when listening.
`GET /_stats` answers the request counts per route and the number of open event streams.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

from bench.loops import LOOPS, LoopKind, run

__all__ = ["Replay", "main", "serve"]

_KEEPALIVE_INTERVAL = 15.0
_TASK_ID_MARKER = "\x00TASKID\x00"


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _response(status: int, body: bytes, content_type: bytes = b"application/json") -> bytes:
    reason = {200: b"OK", 404: b"Not Found", 405: b"Method Not Allowed"}.get(status, b"Error")
    return b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s" % (
        status,
        reason,
        content_type,
        len(body),
        body,
    )


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
_CHUNKED_END = b"0\r\n\r\n"


class Replay:
    """The captured responses, as byte templates in which only the task id is filled in per request."""

    def __init__(self, captured: dict[str, Any]) -> None:
        self.organization_id: str = captured["organization_id"]
        create = captured["create_task"]
        self.task_id_length = len(create["id"])
        self._create = self._template(create, create["id"])
        self._get = self._template(captured["get_task"], captured["get_task"]["id"])
        self._stop = self._template(captured["stop_task"], captured["stop_task"]["id"])
        self.agent = _json(captured["get_agent"])
        events: list[dict[str, Any]] = captured["events"]
        demo_task = events[0]["task_id"]
        self._demo = [self._template(event, demo_task) for event in events]
        by_type = {event["type"]: event for event in events}
        self._created = self._template(by_type["task_created"], demo_task)
        self._finished = self._template(by_type["task_finished"], demo_task)
        chunk = dict(by_type["chunk"])
        chunk["data"] = "\x00DATA\x00"
        self._chunk = self._template(chunk, demo_task)
        self._ids = itertools.count(1)

    @staticmethod
    def _template(value: dict[str, Any], task_id: str) -> list[bytes]:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return [part.encode() for part in text.replace(task_id, _TASK_ID_MARKER).split(_TASK_ID_MARKER)]

    def new_task_id(self) -> str:
        """A unique task id as long as the captured one."""
        return f"bench-{next(self._ids):0{self.task_id_length - 6}d}"

    @staticmethod
    def fill(template: list[bytes], task_id: str) -> bytes:
        """`template` with `task_id` filled in."""
        return task_id.encode().join(template)

    def created(self) -> bytes:
        """Body of a create-task response for a new task."""
        return self.fill(self._create, self.new_task_id())

    def task(self, task_id: str) -> bytes:
        """Body of a get-task response."""
        return self.fill(self._get, task_id)

    def stopped(self, task_id: str) -> bytes:
        """Body of a stop-task response."""
        return self.fill(self._stop, task_id)

    def event(self, sequence: int, envelope: bytes) -> bytes:
        """One SSE frame, as the local platform writes it, wrapped in an HTTP chunk."""
        return _chunk(b"id: %d\ndata: %b\n\n" % (sequence, envelope))

    def created_event(self, task_id: str) -> bytes:
        """The task_created envelope of `task_id`."""
        return self.fill(self._created, task_id)

    def finished_event(self, task_id: str) -> bytes:
        """The task_finished envelope of `task_id`."""
        return self.fill(self._finished, task_id)

    def chunk_event(self, task_id: str, text: str) -> bytes:
        """A chunk envelope of `task_id` carrying `text`."""
        return self.fill(self._chunk, task_id).replace(b"\\u0000DATA\\u0000", text.encode())

    def demo_events(self, task_id: str) -> list[bytes]:
        """The captured demo run's envelopes for `task_id`."""
        return [self.fill(template, task_id) for template in self._demo]


class _Stats:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.open_streams = 0
        self.streams_total = 0
        self.events_sent = 0

    def as_json(self) -> bytes:
        return _json(
            {
                "requests": dict(self.requests),
                "open_event_streams": self.open_streams,
                "event_streams": self.streams_total,
                "events_sent": self.events_sent,
            }
        )


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: requests parsed by hand, answered from the replay templates."""

    def __init__(self, replay: Replay, stats: _Stats) -> None:
        self.replay = replay
        self.stats = stats
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.stream: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without inheriting from it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.stream is not None:
            self.stream.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None and self.stream is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).split(b"\r\n")
            method, target, _ = lines[0].split(b" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            total = end + 4 + int(headers.get(b"content-length", b"0"))
            if len(self.buffer) < total:
                return
            del self.buffer[:total]
            self._dispatch(method.decode(), target.decode().split("?", 1)[0], headers)

    def _dispatch(self, method: str, path: str, headers: dict[bytes, bytes]) -> None:
        assert self.transport is not None
        replay, stats = self.replay, self.stats
        parts = path.strip("/").split("/")
        if parts and parts[0] == replay.organization_id:
            parts = parts[1:]
        route = "unknown"
        body: bytes | None = None
        if len(parts) == 2 and parts[0] == "agent-execution" and method == "POST":
            route, body = "create_task", replay.created()
        elif len(parts) == 3 and parts[0] == "agent-execution" and parts[2] == "status" and method == "GET":
            route, body = "get_task", replay.task(parts[1])
        elif len(parts) == 2 and parts[0] == "agent-execution" and method == "DELETE":
            route, body = "stop_task", replay.stopped(parts[1])
        elif len(parts) == 2 and parts[0] == "agents" and method == "GET":
            route, body = "get_agent", replay.agent
        elif len(parts) == 3 and parts[0] == "agent-execution" and parts[2] == "events" and method == "GET":
            stats.requests["task_events"] += 1
            after = int(headers.get(b"last-event-id", b"0") or b"0")
            self.stream = asyncio.get_running_loop().create_task(self._events(parts[1], after))
            return
        elif parts == ["_stats"]:
            route, body = "stats", stats.as_json()
        stats.requests[route] += 1
        if body is None:
            self.transport.write(_response(404, b'{"detail":"Not Found"}'))
        else:
            self.transport.write(_response(200, body))

    async def _events(self, task_id: str, after: int) -> None:
        transport = self.transport
        assert transport is not None
        replay, stats = self.replay, self.stats
        stats.open_streams += 1
        stats.streams_total += 1
        try:
            transport.write(_SSE_HEAD)
            kind, *args = task_id.split("-")
            if kind == "burst" and args and args[0].isdigit():
                count = int(args[0])
                envelopes = [replay.created_event(task_id)]
                envelopes += [replay.chunk_event(task_id, f"chunk {i:06d} ") for i in range(count)]
                envelopes.append(replay.finished_event(task_id))
                frames = [replay.event(i, e) for i, e in enumerate(envelopes, 1) if i > after]
                transport.write(b"".join(frames))
                stats.events_sent += len(frames)
            elif kind == "rate" and len(args) >= 2 and args[0].isdigit() and args[1].isdigit():
                await self._paced(task_id, int(args[0]), int(args[1]), after)
            elif kind == "idle":
                if after < 1:
                    transport.write(replay.event(1, replay.created_event(task_id)))
                    stats.events_sent += 1
                while True:
                    await asyncio.sleep(_KEEPALIVE_INTERVAL)
                    transport.write(_chunk(b": keepalive\n\n"))
            else:
                envelopes = replay.demo_events(task_id)
                frames = [replay.event(i, e) for i, e in enumerate(envelopes, 1) if i > after]
                transport.write(b"".join(frames))
                stats.events_sent += len(frames)
            transport.write(_CHUNKED_END)
        finally:
            stats.open_streams -= 1
            self.stream = None
        if self.buffer:
            self.data_received(b"")

    async def _paced(self, task_id: str, hz: int, count: int, after: int) -> None:
        transport = self.transport
        assert transport is not None
        replay = self.replay
        loop = asyncio.get_running_loop()
        if after < 1:
            transport.write(replay.event(1, replay.created_event(task_id)))
        period = 1.0 / hz
        start = loop.time()
        for i in range(count):
            sequence = i + 2
            delay = start + (i + 1) * period - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if sequence <= after:
                continue
            envelope = replay.chunk_event(task_id, f"t={time.time_ns()}")
            transport.write(replay.event(sequence, envelope))
            self.stats.events_sent += 1
        if count + 2 > after:
            transport.write(replay.event(count + 2, replay.finished_event(task_id)))


async def serve(replay: Replay, host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT; announce the bound port as one JSON line on stdout."""
    loop = asyncio.get_running_loop()
    stats = _Stats()
    server = await loop.create_server(lambda: _Connection(replay, stats), host, port, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": bound}), flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bench.responder`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replay", type=Path, required=True, help="capture written by bench.capture")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--loop", choices=LOOPS, default="uvloop")
    args = parser.parse_args(argv)
    replay = Replay(json.loads(args.replay.read_text()))
    loop: LoopKind = args.loop
    run(serve(replay, args.host, args.port), loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A fast upstream: answers with the local platform's own bytes, captured once at start.

The local platform validates every body with pydantic and keeps real task state, so on a shared core it caps
the rate long before the bridge does (about 3,200 creates/s against the responder's 82,000). The responder
runs it in-process once, keeps its answers (a task created with the body the bridge sends, the demo agent,
the demo run's events) and replays them, only the task id made unique (same length, so every answer has the
same size). Event streams follow the task id asked for:

- `burst-<n>-…`: task_created, `n` chunk events, task_finished, written at once (events/s);
- `rate-<hz>-<n>-…`: task_created, then `n` chunks at `hz` per second whose text is the wall-clock time (ns)
  of the write, then task_finished (event latency);
- `idle-…`: task_created, then only keep-alive comments every 15 s until the caller goes away.

Options (one JSON argument): `replay` (where the capture is written), `port`. `GET /_stats` counts requests.
"""

import asyncio
import itertools
import json
import re
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

import httpx

from bench.frames import create_task_request
from bench.loadloop import run
from bridge.convert.create import create_task_to_platform
from bridge.localplatform import LocalPlatform

_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)
_SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


async def capture() -> dict[str, Any]:
    """The local platform's answers to a run's calls."""
    body = create_task_to_platform(create_task_request()).body
    async with (
        LocalPlatform(step_delay=0.001) as platform,
        httpx.AsyncClient(base_url=platform.url, headers={"x-api-key": "bench-key"}, timeout=10) as http,
    ):
        created = (await http.post("/agent-execution/demo-agent", json=body)).raise_for_status().json()
        path = f"/{platform.organization_id}/agent-execution/{created['id']}/events"
        async with http.stream("GET", path) as stream:
            events = [json.loads(line[5:]) async for line in stream.aiter_lines() if line.startswith("data:")]
        agent = (await http.get("/agents/demo-agent")).raise_for_status().json()
    return {"organization_id": platform.organization_id, "task": created, "agent": agent, "events": events}


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _template(value: dict[str, Any], task_id: str) -> list[bytes]:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return [part.encode() for part in text.split(task_id)]


class Replay:
    """The captured answers as byte templates in which only the task id is filled in."""

    def __init__(self, captured: dict[str, Any]) -> None:
        self.organization_id: str = captured["organization_id"]
        task = captured["task"]
        self._task, self._width, self._ids = (
            _template(task, task["id"]),
            len(task["id"]) - 6,
            itertools.count(),
        )
        self.agent = json.dumps(captured["agent"]).encode()
        by_type = {event["type"]: event for event in captured["events"]}
        demo = by_type["task_created"]["task_id"]
        by_type["chunk"] = {**by_type["chunk"], "data": "\x00DATA\x00"}
        self._events = {
            kind: _template(by_type[kind], demo) for kind in ("task_created", "chunk", "task_finished")
        }

    def task(self) -> bytes:
        """A new task's JSON."""
        return f"bench-{next(self._ids):0{self._width}d}".encode().join(self._task)

    def event(self, sequence: int, kind: str, task_id: str, text: str = "") -> bytes:
        """One SSE frame of `kind` as the local platform writes it, in an HTTP chunk."""
        envelope = task_id.encode().join(self._events[kind]).replace(b"\\u0000DATA\\u0000", text.encode())
        return _chunk(b"id: %d\ndata: %b\n\n" % (sequence, envelope))


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection answered from the replay: a stub that trusts what the harness sends."""

    def __init__(self, replay: Replay, stats: Counter[str]) -> None:
        self.replay, self.stats, self.buffer = replay, stats, bytearray()
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
        while self.transport and not self.stream and (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(self.buffer[:end])
            length = int(found[1]) if (found := _LENGTH.search(head)) else 0
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[: end + 4 + length]
            method, target, _ = head.decode().split(" ", 2)
            self._answer(method, target.split("?")[0].strip("/").split("/"))

    def _answer(self, method: str, path: list[str]) -> None:
        assert self.transport is not None
        path = path[1:] if path[0] == self.replay.organization_id else path
        route, body = "unknown", None
        if path[0] == "agent-execution" and path[-1] == "events":
            self.stats["task_events"] += 1
            self.stream = asyncio.get_running_loop().create_task(self._events(path[1]))
            return
        if path[0] == "agent-execution" and method == "POST":
            route, body = "create_task", self.replay.task()
        elif path[0] == "agents":
            route, body = "get_agent", self.replay.agent
        elif path == ["_stats"]:
            route, body = "stats", json.dumps({"requests": self.stats}).encode()
        self.stats[route] += 1
        status = b"200 OK" if body else b"404 Not Found"
        body = body or b'{"detail":"Not Found"}'
        head = b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
        self.transport.write(head % (status, len(body)) + body)

    async def _events(self, task_id: str) -> None:
        transport, event = self.transport, self.replay.event
        assert transport is not None
        transport.write(_SSE_HEAD + event(1, "task_created", task_id))
        kind, *args = task_id.split("-")
        try:
            if kind == "idle":
                while True:
                    await asyncio.sleep(15)
                    transport.write(_chunk(b": keepalive\n\n"))
            elif kind == "rate":
                hz, count, start = int(args[0]), int(args[1]), time.monotonic()
                for i in range(count):
                    await asyncio.sleep(max(0.0, start + (i + 1) / hz - time.monotonic()))
                    transport.write(event(i + 2, "chunk", task_id, f"t={time.time_ns()}"))
            else:
                count = int(args[0]) if kind == "burst" else 0
                transport.write(
                    b"".join(event(i + 2, "chunk", task_id, f"chunk {i:06d} ") for i in range(count))
                )
            transport.write(event(count + 2, "task_finished", task_id) + b"0\r\n\r\n")
        finally:
            self.stream = None
        if self.buffer:
            self.data_received(b"")


async def _serve(replay: Replay, port: int) -> None:
    loop, stats, stop = asyncio.get_running_loop(), Counter[str](), asyncio.Event()
    server = await loop.create_server(lambda: _Connection(replay, stats), "127.0.0.1", port, backlog=4096)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    options = json.loads(sys.argv[1])
    captured = asyncio.run(capture())
    Path(options["replay"]).write_text(json.dumps(captured, indent=1))
    run(_serve(Replay(captured), options["port"]), "uvloop")

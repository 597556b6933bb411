"""A Python gRPC client for what h2load cannot measure: gRPC statuses, event latency and open streams.

Subcommands (each prints one JSON document on stdout):

- `sample`: a few CreateTask and StreamEvents calls; their statuses and response sizes (the harness uses the
  sizes to count gRPC successes in h2load's byte totals).
- `latency`: `--streams` StreamEvents of `rate-<hz>-<n>` tasks; each chunk carries the upstream's write time,
  so the client records upstream write → gRPC client latency.
- `open`: opens `--streams` idle streams at `--rate` per second, waits for each one's first event, reports
  errors and the server's RSS (`--pid`), then holds them until stdin closes (or `--hold` seconds) and cancels.
- `cycles`: `--cycles` times: open an idle stream, wait for its first event, cancel; reports the server's RSS
  after the warm-up and at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc

from bench.frames import create_task_request, frame
from bench.loops import LOOPS, LoopKind, run
from bench.machine import rss_bytes
from bench.stats import percentiles
from xpander.bridge.v1 import task_service_pb2, task_service_pb2_grpc

__all__ = ["main"]

_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]


def _channels(target: str, count: int) -> list[grpc.aio.Channel]:
    # Distinct channel args keep grpc from sharing one subchannel (one TCP connection) between channels.
    return [
        grpc.aio.insecure_channel(target, options=[*_CHANNEL_OPTIONS, ("bench.channel", i)])
        for i in range(count)
    ]


def _stubs(channels: list[grpc.aio.Channel]) -> list[task_service_pb2_grpc.TaskServiceAsyncStub]:
    return [task_service_pb2_grpc.TaskServiceStub(channel) for channel in channels]


async def _close(channels: list[grpc.aio.Channel]) -> None:
    await asyncio.gather(*(channel.close() for channel in channels))


async def sample(target: str, calls: int, burst: int) -> dict[str, Any]:
    """Statuses and sizes of a few calls, and the responses themselves (base64) for `bench.rawgrpc`."""
    channels = _channels(target, 1)
    stub = _stubs(channels)[0]
    codes: Counter[str] = Counter()
    sizes: Counter[int] = Counter()
    created = b""
    for _ in range(calls):
        try:
            response = await stub.CreateTask(create_task_request(), timeout=10)
            codes["OK"] += 1
            sizes[len(frame(response))] += 1
            created = response.SerializeToString()
        except grpc.aio.AioRpcError as error:
            codes[error.code().name] += 1
    stream_codes: Counter[str] = Counter()
    events = 0
    stream_bytes = 0
    streamed: list[bytes] = []
    call = stub.StreamEvents(
        task_service_pb2.StreamEventsRequest(task_id=f"burst-{burst}-sample"), timeout=10
    )
    try:
        async for event in call:
            events += 1
            stream_bytes += len(frame(event))
            streamed.append(event.SerializeToString())
        stream_codes["OK"] += 1
    except grpc.aio.AioRpcError as error:
        stream_codes[error.code().name] += 1
    await _close(channels)
    return {
        "create_codes": dict(codes),
        "create_response_frame_bytes": sizes.most_common(1)[0][0] if sizes else 0,
        "create_sizes": {str(k): v for k, v in sizes.items()},
        "stream_codes": dict(stream_codes),
        "stream_events": events,
        "stream_frame_bytes": stream_bytes,
        "responses": {
            "create": base64.b64encode(created).decode(),
            "events": [base64.b64encode(item).decode() for item in streamed],
        },
    }


async def latency(target: str, streams: int, hz: int, count: int, channels_n: int) -> dict[str, Any]:
    """Upstream write → client latency of chunk events on `streams` concurrent streams."""
    channels = _channels(target, channels_n)
    stubs = _stubs(channels)
    samples: list[float] = []
    codes: Counter[str] = Counter()

    async def one(i: int) -> None:
        stub = stubs[i % len(stubs)]
        request = task_service_pb2.StreamEventsRequest(task_id=f"rate-{hz}-{count}-{i}")
        try:
            async for response in stub.StreamEvents(request, timeout=count / hz + 30):
                text = response.event.chunk
                if text.startswith("t="):
                    samples.append((time.time_ns() - int(text[2:])) / 1e6)
            codes["OK"] += 1
        except grpc.aio.AioRpcError as error:
            codes[error.code().name] += 1

    # Stagger the starts over one period so the streams' ticks do not all fall on the same instant.
    async def staggered(i: int) -> None:
        await asyncio.sleep(i / streams / hz)
        await one(i)

    await asyncio.gather(*(staggered(i) for i in range(streams)))
    await _close(channels)
    return {
        "streams": streams,
        "hz": hz,
        "events_per_stream": count,
        "codes": dict(codes),
        "latency_ms": percentiles(samples).as_dict(),
    }


class _Opener:
    """Opens idle streams at a fixed rate and keeps them."""

    def __init__(self, target: str, channels_n: int) -> None:
        self.channels = _channels(target, channels_n)
        self.stubs = _stubs(self.channels)
        self.calls: list[grpc.aio.UnaryStreamCall[Any, Any]] = []
        self.codes: Counter[str] = Counter()
        self.first_event_ms: list[float] = []

    async def open_one(self, i: int, prefix: str = "idle") -> grpc.aio.UnaryStreamCall[Any, Any] | None:
        stub = self.stubs[i % len(self.stubs)]
        started = time.perf_counter()
        call = stub.StreamEvents(task_service_pb2.StreamEventsRequest(task_id=f"{prefix}-{i}"))
        try:
            response = await call.read()
        except grpc.aio.AioRpcError as error:
            self.codes[error.code().name] += 1
            return None
        if response is grpc.aio.EOF:
            self.codes["EOF"] += 1
            return None
        self.first_event_ms.append((time.perf_counter() - started) * 1000)
        self.codes["OK"] += 1
        return call

    async def open_many(self, count: int, rate: float) -> float:
        started = time.perf_counter()
        pending = []
        for i in range(count):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.ensure_future(self.open_one(i)))
        calls = await asyncio.gather(*pending)
        self.calls = [call for call in calls if call is not None]
        return time.perf_counter() - started

    async def sample_rss(self, pid: int, every: float, curve: list[tuple[int, float]]) -> None:
        """Append (streams open, server RSS in MB) every `every` seconds until cancelled."""
        while True:
            curve.append((self.codes["OK"], round(rss_bytes(pid) / 2**20, 1)))
            await asyncio.sleep(every)

    async def cancel_all(self) -> None:
        for call in self.calls:
            call.cancel()
        self.calls = []
        await asyncio.sleep(0.5)
        await _close(self.channels)


async def _wait_stdin_closed(hold: float | None) -> None:
    loop = asyncio.get_running_loop()
    if hold is not None:
        await asyncio.sleep(hold)
        return
    await loop.run_in_executor(None, sys.stdin.read)


async def open_streams(
    target: str, streams: int, rate: float, pid: int | None, hold: float | None, channels_n: int
) -> dict[str, Any]:
    """Open idle streams, report, hold, cancel."""
    opener = _Opener(target, channels_n)
    rss_before = rss_bytes(pid) if pid else 0
    curve: list[tuple[int, float]] = []
    sampler = asyncio.ensure_future(opener.sample_rss(pid, 0.5, curve)) if pid else None
    seconds = await opener.open_many(streams, rate)
    await asyncio.sleep(1.0)
    if sampler is not None:
        sampler.cancel()
    rss_open = rss_bytes(pid) if pid else 0
    curve.append((opener.codes["OK"], round(rss_open / 2**20, 1)))
    opened = {
        "streams": streams,
        "opened": len(opener.calls),
        "codes": dict(opener.codes),
        "open_seconds": round(seconds, 3),
        "open_rate_per_s": round(len(opener.calls) / seconds, 1) if seconds else 0,
        "first_event_ms": percentiles(opener.first_event_ms).as_dict(),
        "server_rss_before_mb": round(rss_before / 2**20, 1),
        "server_rss_open_mb": round(rss_open / 2**20, 1),
        "server_rss_curve": curve,
    }
    print(json.dumps({"ready": True, **opened}), flush=True)
    await _wait_stdin_closed(hold)
    still_open = sum(1 for call in opener.calls if not call.done())
    await opener.cancel_all()
    return {**opened, "still_open_at_end": still_open}


async def cycles(
    target: str, total: int, warm_up: int, concurrency: int, pid: int | None, channels_n: int
) -> dict[str, Any]:
    """Open/cancel cycles; the server's RSS after `warm_up` cycles and after all of them."""
    opener = _Opener(target, channels_n)
    done = 0
    rss_warm = 0
    started = time.perf_counter()
    next_id = 0

    async def worker() -> None:
        nonlocal done, next_id, rss_warm
        while next_id < total:
            i = next_id
            next_id += 1
            call = await opener.open_one(i)
            if call is not None:
                call.cancel()
            done += 1
            if done == warm_up and pid:
                await asyncio.sleep(0)
                rss_warm = rss_bytes(pid)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    await asyncio.sleep(2.0)
    rss_end = rss_bytes(pid) if pid else 0
    await _close(opener.channels)
    return {
        "cycles": total,
        "warm_up": warm_up,
        "codes": dict(opener.codes),
        "seconds": round(seconds, 2),
        "cycles_per_s": round(total / seconds, 1),
        "server_rss_warm_mb": round(rss_warm / 2**20, 1),
        "server_rss_end_mb": round(rss_end / 2**20, 1),
        "rss_growth": round((rss_end - rss_warm) / rss_warm, 4) if rss_warm else None,
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bench.streams`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("sample", "latency", "open", "cycles"))
    parser.add_argument("--target", required=True, help="host:port of the gRPC server")
    parser.add_argument("--loop", choices=LOOPS, default="uvloop")
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--burst", type=int, default=10, help="chunks in the sampled stream")
    parser.add_argument("--dump", type=Path, help="sample: write the responses here (base64 JSON)")
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--hz", type=int, default=10)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--pid", type=int)
    parser.add_argument("--hold", type=float)
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--warm-up", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args(argv)
    loop: LoopKind = args.loop
    result: dict[str, Any]
    if args.command == "sample":
        result = run(sample(args.target, args.calls, args.burst), loop)
        responses = result.pop("responses")
        if args.dump is not None:
            args.dump.write_text(json.dumps(responses))
    elif args.command == "latency":
        result = run(latency(args.target, args.streams, args.hz, args.events, args.channels), loop)
    elif args.command == "open":
        opening = open_streams(args.target, args.streams, args.rate, args.pid, args.hold, args.channels)
        result = run(opening, loop)
    else:
        cycling = cycles(args.target, args.cycles, args.warm_up, args.concurrency, args.pid, args.channels)
        result = run(cycling, loop)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())

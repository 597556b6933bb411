"""A gRPC client for what h2load cannot measure: event latency and open streams. Its one argument is a JSON
document of options whose `command` is one of:

`sample`, `latency`, `open` or `cycles` (see each); it prints one JSON document (its figures) on stdout.
"""

import asyncio
import base64
import json
import sys
import time
from collections import Counter
from typing import Any

import grpc

from bench.frames import create_task_request, frame
from bench.loadloop import percentiles, run
from bench.procs import rss_bytes
from xpander.bridge.v1 import task_service_pb2, task_service_pb2_grpc

_Request = task_service_pb2.StreamEventsRequest
_Call = grpc.aio.UnaryStreamCall[Any, Any]


def _mb(pid: int) -> float:
    return round(rss_bytes(pid) / 2**20, 1)


class _Client:
    """Stubs over four channels, and the statuses of the streams opened through them."""

    def __init__(self, target: str) -> None:
        # Distinct channel args keep grpc from sharing one subchannel (one TCP connection) between channels.
        self.channels = [grpc.aio.insecure_channel(target, options=[("bench.channel", i)]) for i in range(4)]
        self.stubs = [task_service_pb2_grpc.TaskServiceStub(channel) for channel in self.channels]
        self.codes: Counter[str] = Counter()

    async def open_one(self, i: int) -> _Call | None:
        """An idle stream whose first event has arrived, or None (its status counted)."""
        call = self.stubs[i % 4].StreamEvents(_Request(task_id=f"idle-{i}"))
        try:
            if await call.read() is grpc.aio.EOF:
                self.codes["EOF"] += 1
                return None
        except grpc.aio.AioRpcError as error:
            self.codes[error.code().name] += 1
            return None
        self.codes["OK"] += 1
        return call

    async def close(self) -> None:
        await asyncio.gather(*(channel.close() for channel in self.channels))


async def sample(o: dict[str, Any]) -> dict[str, Any]:
    """Frame sizes of five CreateTask answers and of one `burst` stream (h2load's byte totals count gRPC
    successes with them), and the answers themselves, for `bench.rawgrpc`."""
    client = _Client(o["target"])
    created = [await client.stubs[0].CreateTask(create_task_request(), timeout=10) for _ in range(5)]
    request = _Request(task_id=f"burst-{o['events']}-sample")
    events = [event async for event in client.stubs[0].StreamEvents(request, timeout=10)]
    await client.close()
    sizes = {len(frame(answer)) for answer in created}
    if len(sizes) != 1:
        raise RuntimeError(f"CreateTask answers differ in size, so bytes cannot count them: {sizes}")
    stream_bytes = sum(len(frame(event)) for event in events)
    encoded = [base64.b64encode(m.SerializeToString()).decode() for m in (created[0], *events)]
    messages = {"create": encoded[0], "events": encoded[1:]}
    return {"create_frame_bytes": sizes.pop(), "stream_frame_bytes": stream_bytes, "messages": messages}


async def latency(o: dict[str, Any]) -> dict[str, Any]:
    """Upstream write → client latency of chunks (each carries its write time), 10/s on `streams` streams."""
    client, streams, samples = _Client(o["target"]), o["streams"], list[float]()

    async def one(i: int) -> None:
        # Staggered over one period so the streams' ticks do not all fall on the same instant.
        await asyncio.sleep(i / streams / 10)
        call = client.stubs[i % 4].StreamEvents(_Request(task_id=f"rate-10-{o['events']}-{i}"))
        try:
            async for response in call:
                if response.event.chunk.startswith("t="):
                    samples.append((time.time_ns() - int(response.event.chunk[2:])) / 1e6)
            client.codes["OK"] += 1
        except grpc.aio.AioRpcError as error:
            client.codes[error.code().name] += 1

    await asyncio.gather(*(one(i) for i in range(streams)))
    await client.close()
    return {"codes": dict(client.codes), "latency_ms": percentiles(samples)}


async def open_streams(o: dict[str, Any]) -> dict[str, Any]:
    """Open `streams` idle streams at `rate` per second, print the errors and the server's RSS once every
    first event is in, hold them until stdin closes (or `hold` seconds), cancel them."""
    client, curve, started = _Client(o["target"]), list[tuple[int, float]](), time.perf_counter()

    async def open_at(i: int) -> _Call | None:
        await asyncio.sleep(i / o["rate"])
        if i % max(1, o["streams"] // 20) == 0:
            curve.append((client.codes["OK"], _mb(o["pid"])))
        return await client.open_one(i)

    calls = [call for call in await asyncio.gather(*map(open_at, range(o["streams"]))) if call is not None]
    # The rate counts until the last stream's first event.
    seconds = time.perf_counter() - started
    await asyncio.sleep(1.0)
    curve.append((client.codes["OK"], _mb(o["pid"])))
    opened = {"streams": o["streams"], "opened": len(calls), "codes": dict(client.codes), "rss_curve": curve}
    opened |= {"open_rate_per_s": round(len(calls) / seconds, 1), "rss_open_mb": curve[-1][1]}
    print(json.dumps(opened), flush=True)
    if o["hold"] is not None:
        await asyncio.sleep(o["hold"])
    else:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for call in calls:
        call.cancel()
    await asyncio.sleep(0.5)
    await client.close()
    return opened


async def cycles(o: dict[str, Any]) -> dict[str, Any]:
    """Open/cancel cycles by 50 workers; the server's RSS after the warm-up and after all of them."""
    client, ids, finished, warm_mb = _Client(o["target"]), iter(range(o["cycles"])), 0, 0.0

    async def worker() -> None:
        nonlocal finished, warm_mb
        for i in ids:
            call = await client.open_one(i)
            if call is not None:
                call.cancel()
            finished += 1
            if finished == o["warm_up"]:
                warm_mb = _mb(o["pid"])

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(50)))
    rate = round(o["cycles"] / (time.perf_counter() - started), 1)
    await asyncio.sleep(2.0)
    end_mb = _mb(o["pid"])
    await client.close()
    found = {"cycles": o["cycles"], "codes": dict(client.codes), "cycles_per_s": rate, "rss_end_mb": end_mb}
    return {**found, "rss_warm_mb": warm_mb, "rss_growth": round((end_mb - warm_mb) / warm_mb, 4)}


if __name__ == "__main__":
    options = json.loads(sys.argv[1])
    commands = {"sample": sample, "latency": latency, "open": open_streams, "cycles": cycles}
    print(json.dumps(run(commands[options["command"]](options), "uvloop")), flush=True)

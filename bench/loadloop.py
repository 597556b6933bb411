"""Closed- and open-loop drivers for the Python baselines, the event loop they run on, and percentiles.

The official SDK baseline runs in its own virtual environment without the project installed, so this module
imports only the standard library (and uvloop when asked for).
"""

import asyncio
import math
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Literal, TypeVar

_T = TypeVar("_T")
Call = Callable[[], Awaitable[object]]
Caught = tuple[type[BaseException], ...]
_SHARES = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p99.9": 0.999}


def run(coro: Coroutine[Any, Any, _T], loop: Literal["asyncio", "uvloop"]) -> _T:
    """Run `coro` to completion on a new event loop of kind `loop`."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def percentiles(sample_ms: Sequence[float]) -> dict[str, float]:
    """Count, p50, p90, p99, p99.9, max and mean of latencies in milliseconds; NaNs for an empty sample."""
    ordered = sorted(sample_ms) or [math.nan]
    # Nearest rank: the smallest value with at least that share of the sample at or below it.
    ranks = {name: ordered[max(0, math.ceil(share * len(ordered)) - 1)] for name, share in _SHARES.items()}
    summary = {**ranks, "max": ordered[-1], "mean": sum(ordered) / len(ordered)}
    return {"count": len(sample_ms), **{name: round(value, 3) for name, value in summary.items()}}


def median(values: list[float]) -> float:
    """The median, NaN for no values."""
    return float(statistics.median(values)) if values else math.nan


class _Timed:
    """A call timed: the latencies (ms) of those that answered, the error names of those that failed."""

    def __init__(self, call: Call, caught: Caught) -> None:
        self.call, self.caught, self.latencies, self.errors = call, caught, list[float](), Counter[str]()

    async def __call__(self, record: bool = True) -> None:
        started = time.perf_counter()
        try:
            await self.call()
        except self.caught as error:
            self.errors[type(error).__name__] += 1
            return
        if record:
            self.latencies.append((time.perf_counter() - started) * 1000)

    def summary(self, **more: Any) -> dict[str, Any]:
        return {**more, "errors": dict(self.errors), "latency_ms": percentiles(self.latencies)}


async def closed_loop(call: Call, requests: int, concurrency: int, caught: Caught) -> dict[str, Any]:
    """`requests` calls by `concurrency` workers back to back: the maximum rate at that concurrency. No call
    starts after ten seconds: a client that collapses under concurrency would hold the run up."""
    timed, remaining, started = _Timed(call, caught), requests, time.perf_counter()

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0 and time.perf_counter() < started + 10:
            remaining -= 1
            await timed()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return timed.summary(req_per_s=round(len(timed.latencies) / (time.perf_counter() - started), 1))


async def open_loop(call: Call, rate: float, seconds: float, caught: Caught) -> dict[str, Any]:
    """Calls started every 1/`rate` s for `seconds` after one second of warm-up, whatever the outstanding
    ones do; those unanswered ten seconds after the last start are cancelled and counted `unfinished`."""
    timed, tasks, begin = _Timed(call, caught), list[asyncio.Task[None]](), time.perf_counter()
    for i in range(int((seconds + 1) * rate)):
        await asyncio.sleep(max(0.0, begin + i / rate - time.perf_counter()))
        tasks.append(asyncio.ensure_future(timed(record=i >= rate)))
    _, late = await asyncio.wait(tasks, timeout=10)
    for task in late:
        task.cancel()
    if late:
        timed.errors["unfinished"] = len(late)
    return timed.summary(offered_rate=rate)

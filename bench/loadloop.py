"""Closed- and open-loop drivers for Python clients (the baselines), with standard-library imports only.

The official SDK baseline runs in its own virtual environment (`.venv-sdk`) without the project installed,
so this module and `bench.stats` import nothing but the standard library.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from bench.stats import percentiles

__all__ = ["Call", "closed_loop", "open_loop"]

Call = Callable[[], Awaitable[object]]


async def closed_loop(
    call: Call,
    requests: int,
    concurrency: int,
    errors_caught: tuple[type[BaseException], ...],
    max_seconds: float | None = None,
) -> dict[str, Any]:
    """`requests` calls made by `concurrency` workers back to back: the maximum rate at that concurrency.

    With `max_seconds`, no call starts after that many seconds (a client that collapses under concurrency
    would otherwise hold the whole benchmark up)."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    remaining = requests
    stop_at = time.perf_counter() + max_seconds if max_seconds else float("inf")

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0 and time.perf_counter() < stop_at:
            remaining -= 1
            started = time.perf_counter()
            try:
                await call()
            except errors_caught as error:
                errors[type(error).__name__] += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    return {
        "mode": "closed",
        "requests": requests,
        "concurrency": concurrency,
        "seconds": round(seconds, 3),
        "req_per_s": round(len(latencies) / seconds, 1),
        "ok": len(latencies),
        "errors": dict(errors),
        "latency_ms": percentiles(latencies).as_dict(),
    }


async def open_loop(
    call: Call,
    rate: float,
    seconds: float,
    errors_caught: tuple[type[BaseException], ...],
    warm_up: float = 1.0,
    drain: float = 10.0,
) -> dict[str, Any]:
    """Calls started every 1/`rate` s for `seconds` whatever the outstanding ones do; the first `warm_up`
    seconds are not recorded. Latency runs from each call's start to its answer. Calls still unanswered
    `drain` seconds after the last one started are cancelled and counted as `unfinished` errors."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    lateness: list[float] = []

    async def one(record: bool) -> None:
        started = time.perf_counter()
        try:
            await call()
        except errors_caught as error:
            errors[type(error).__name__] += 1
            return
        if record:
            latencies.append((time.perf_counter() - started) * 1000)

    total = int((seconds + warm_up) * rate)
    warm = int(warm_up * rate)
    tasks: list[asyncio.Task[None]] = []
    begin = time.perf_counter()
    for i in range(total):
        due = begin + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lateness.append((time.perf_counter() - due) * 1000)
        tasks.append(asyncio.ensure_future(one(i >= warm)))
    issued = time.perf_counter() - begin
    _, late = await asyncio.wait(tasks, timeout=drain)
    for task in late:
        task.cancel()
    if late:
        errors["unfinished"] += len(late)
        await asyncio.wait(late)
    return {
        "mode": "open",
        "offered_rate": rate,
        "achieved_rate": round((total - 1) / issued, 1) if issued > 0 else 0.0,
        "seconds": round(issued, 3),
        "ok": len(latencies),
        "errors": dict(errors),
        "latency_ms": percentiles(latencies).as_dict(),
        "schedule_lateness_ms": percentiles(lateness).as_dict(),
    }

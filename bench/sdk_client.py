# mypy: ignore-errors
# This module runs under .venv-sdk (the official xpander-sdk and its dependencies), which mypy cannot see.
"""Baseline (b): the official xpander-sdk 2.0.537 against the same upstream (`acreate_task`, `aevents`).

Runs in `.venv-sdk` (`make sdk-venv`) with the repository on PYTHONPATH, importing only the standard library,
`bench.loadloop`/`bench.stats` and `xpander_sdk`. Modes as in `bench.direct`: `closed`, `open`, `events`.
The agent is loaded once before measuring; each `acreate_task` is then one POST (the SDK opens a new
`httpx.AsyncClient`, and so a new connection, per call: that is its cost, measured as it is).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from xpander_sdk import Agents, Configuration, ModuleException, Tasks

from bench.loadloop import closed_loop, open_loop

_ERRORS = (ModuleException, OSError)


async def _events(config: Configuration, streams: int, count: int) -> dict[str, Any]:
    tasks = Tasks(configuration=config)
    received = 0

    async def one(i: int) -> None:
        nonlocal received
        task = await tasks.aget(f"burst-{count}-{i}")
        async for event in task.aevents():
            received += 1
            kind = event.type.value if hasattr(event.type, "value") else str(event.type)
            if kind == "task_finished":
                return

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(streams)))
    seconds = time.perf_counter() - started
    return {
        "mode": "events",
        "streams": streams,
        "events": received,
        "seconds": round(seconds, 3),
        "events_per_s": round(received / seconds, 1),
    }


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    config = Configuration(api_key="bench-key", organization_id=args.organization, base_url=args.base_url)
    agent = await Agents(configuration=config).aget("demo-agent")

    async def create() -> object:
        return await agent.acreate_task(prompt=args.prompt, events_streaming=True)

    await create()
    if args.mode == "closed":
        return await closed_loop(create, args.requests, args.concurrency, _ERRORS, args.max_seconds)
    if args.mode == "open":
        return await open_loop(create, args.rate, args.seconds, _ERRORS)
    return await _events(config, args.streams, args.events)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `.venv-sdk/bin/python -m bench.sdk_client`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("closed", "open", "events"))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--organization", default="local-org")
    parser.add_argument("--prompt", default="Say hello #chunks=3")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument(
        "--max-seconds", type=float, default=10.0, help="closed loop: start no call after this"
    )
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--events", type=int, default=1000)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(_main(args))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

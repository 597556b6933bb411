# mypy: ignore-errors
# This module runs under .venv-sdk (the official xpander-sdk and its dependencies), which mypy cannot see.
"""Baseline (b): the official xpander-sdk 2.0.537 creating tasks against the same upstream (`acreate_task`).

Runs in `.venv-sdk` (`make sdk-venv`), importing only the standard library, `bench.loadloop` and the SDK. The
agent is loaded once; each `acreate_task` is then one POST (on a new connection: the SDK's own cost).
"""

import asyncio
import json
import sys

from xpander_sdk import Agents, Configuration, ModuleException

from bench.loadloop import closed_loop


async def _main(o: dict) -> dict:
    config = Configuration(api_key="bench-key", organization_id=o["organization"], base_url=o["base_url"])
    agent = await Agents(configuration=config).aget("demo-agent")

    async def create() -> object:
        return await agent.acreate_task(prompt="Say hello #chunks=3", events_streaming=True)

    await create()
    return await closed_loop(create, o["requests"], o["concurrency"], (ModuleException, OSError))


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_main(json.loads(sys.argv[1])))), flush=True)

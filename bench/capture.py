"""Capture the local platform's exact responses for the responder to replay.

Runs the local platform in-process and records, byte for byte as JSON, what it answers to the calls a
benchmark makes: create a task (with the body the bridge itself would send), read it, stop one, load the demo
agent, and the demo agent's whole event stream (created, updated, chunks, finished).

Run: `python -m bench.capture bench/results/replay.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from bench.frames import create_task_request
from bridge.convert.create import create_task_to_platform
from bridge.localplatform import LocalPlatform

__all__ = ["capture", "main"]

_AGENT = "demo-agent"
_PROMPT = create_task_request().prompt


async def _json(response: httpx.Response) -> Any:
    response.raise_for_status()
    assert response.headers["content-type"].startswith("application/json"), response.headers
    return response.json()


async def capture() -> dict[str, Any]:
    """The local platform's answers to a benchmark's calls."""
    async with LocalPlatform(step_delay=0.001) as platform:
        org = platform.organization_id
        headers = {"x-api-key": "bench-key"}
        body = create_task_to_platform(create_task_request(_AGENT, _PROMPT)).body
        async with httpx.AsyncClient(base_url=platform.url, headers=headers, timeout=10) as http:
            created = await _json(await http.post(f"/agent-execution/{_AGENT}", json=body))
            events: list[dict[str, Any]] = []
            async with http.stream("GET", f"/{org}/agent-execution/{created['id']}/events") as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                async for line in stream.aiter_lines():
                    if line.startswith("data:"):
                        events.append(json.loads(line[5:].strip()))
            task = await _json(await http.get(f"/agent-execution/{created['id']}/status"))
            never = dict(body, input=dict(body["input"], text="wait #never"))
            waiting = await _json(await http.post(f"/agent-execution/{_AGENT}", json=never))
            stopped = await _json(await http.delete(f"/agent-execution/{waiting['id']}"))
            agent = await _json(await http.get(f"/agents/{_AGENT}"))
    types = [event["type"] for event in events]
    for wanted in ("task_created", "chunk", "task_finished"):
        assert wanted in types, f"the demo run has no {wanted} event: {types}"
    return {
        "organization_id": org,
        "agent_id": _AGENT,
        "create_body": body,
        "create_task": created,
        "get_task": task,
        "stop_task": stopped,
        "get_agent": agent,
        "events": events,
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bench.capture`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    args = parser.parse_args(argv)
    captured = asyncio.run(capture())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(captured, indent=1) + "\n")
    print(json.dumps({"events": [event["type"] for event in captured["events"]]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

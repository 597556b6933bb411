"""Shared helpers of the local platform tests: a strict SSE reader and a create-task shortcut."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx

ORG = "local-org"


@dataclass(frozen=True)
class Frame:
    """One SSE block as sent: an event (`id` + `data`) or a comment line."""

    id: int | None = None
    data: dict[str, Any] | None = None
    comment: str | None = None


def parse_sse(text: str) -> list[Frame]:
    """Parse the exact shape the local platform sends; anything else fails the test."""
    frames: list[Frame] = []
    assert text == "" or text.endswith("\n\n"), f"stream does not end on a block boundary: {text[-80:]!r}"
    for block in text.split("\n\n")[:-1]:
        lines = block.split("\n")
        if lines[0].startswith(":"):
            assert len(lines) == 1, block
            frames.append(Frame(comment=lines[0][1:].strip()))
            continue
        assert len(lines) == 2, block
        assert lines[0].startswith("id: "), block
        assert lines[1].startswith("data: "), block
        frames.append(Frame(id=int(lines[0][4:]), data=json.loads(lines[1][6:])))
    return frames


def events(frames: list[Frame]) -> list[dict[str, Any]]:
    """The event envelopes among the frames, in order."""
    return [frame.data for frame in frames if frame.data is not None]


def types(frames: list[Frame]) -> list[str]:
    """The event types among the frames, in order."""
    return [event["type"] for event in events(frames)]


def events_path(task_id: str, org: str = ORG) -> str:
    """The SSE path the SDK uses (always under the organization)."""
    return f"/{org}/agent-execution/{task_id}/events"


async def read_stream(
    client: httpx.AsyncClient,
    task_id: str,
    *,
    headers: dict[str, str] | None = None,
    org: str = ORG,
    within: float = 10.0,
) -> list[Frame]:
    """Read a task's event stream until the server closes it."""
    async with (
        asyncio.timeout(within),
        client.stream("GET", events_path(task_id, org), headers=headers) as resp,
    ):
        assert resp.status_code == 200, await resp.aread()
        assert resp.headers["content-type"] == "text/event-stream"
        text = (await resp.aread()).decode()
    return parse_sse(text)


async def create(
    client: httpx.AsyncClient, prompt: str = "hello local world", agent: str = "demo-agent", **fields: Any
) -> dict[str, Any]:
    """Create a task (streaming on unless said otherwise) and return its Task JSON."""
    body: dict[str, Any] = {"input": {"text": prompt}, "events_streaming": True, **fields}
    resp = await client.post(f"/agent-execution/{agent}", json=body)
    assert resp.status_code == 200, resp.text
    task: dict[str, Any] = resp.json()
    return task


async def wait_status(client: httpx.AsyncClient, task_id: str, status: str) -> dict[str, Any]:
    """Poll a task until it reaches `status` (for at most five seconds)."""
    for _ in range(500):
        task: dict[str, Any] = (await client.get(f"/agent-execution/{task_id}/status")).json()
        if task["status"] == status:
            return task
        await asyncio.sleep(0.01)
    raise AssertionError(f"task {task_id} never reached {status}")


async def wait_open_streams(client: httpx.AsyncClient, count: int) -> None:
    """Poll the stats until exactly `count` event streams are open (for at most five seconds)."""
    for _ in range(500):
        if (await stats(client))["open_event_streams"] == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"open event streams never reached {count}")


async def read_until_cut(client: httpx.AsyncClient, path: str) -> str:
    """Read a stream the server is expected to cut mid-way; returns what arrived before the cut."""
    text = ""
    try:
        async with client.stream("GET", path) as stream:
            assert stream.status_code == 200
            async for chunk in stream.aiter_text():
                text += chunk
    except httpx.RemoteProtocolError:
        return text
    raise AssertionError(f"the stream ended cleanly instead of being cut: {text[-200:]!r}")


async def stats(client: httpx.AsyncClient) -> dict[str, Any]:
    """The platform's `/_local/stats` document."""
    document: dict[str, Any] = (await client.get("/_local/stats")).json()
    return document

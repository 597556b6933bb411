"""Test controls: injected faults, request statistics, and the bound on finished tasks."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from bridge.localplatform import LocalPlatform
from tests.localplatform.helpers import (
    create,
    events_path,
    parse_sse,
    read_stream,
    read_until_cut,
    stats,
    types,
    wait_open_streams,
    wait_status,
)


async def fault(client: httpx.AsyncClient, **spec: Any) -> dict[str, Any]:
    resp = await client.post("/_local/faults", json=spec)
    assert resp.status_code == 200, resp.text
    document: dict[str, Any] = resp.json()
    return document


async def test_status_fault_answers_n_times_then_clears_itself(client: httpx.AsyncClient) -> None:
    active = await fault(client, route="create_task", status=503, times=2, retry_after=1, detail="busy")
    assert active == {
        "faults": [
            {"route": "create_task", "status": 503, "times": 2, "retry_after": 1, "latency": 0.0,
             "drop_after_events": None, "close_cleanly": False, "detail": "busy"}
        ]
    }  # fmt: skip
    for _ in range(2):
        resp = await client.post("/agent-execution/demo-agent", json={})
        assert (resp.status_code, resp.json(), resp.headers["retry-after"]) == (503, {"detail": "busy"}, "1")
        assert resp.headers["content-type"] == "application/json"
    assert (await client.post("/agent-execution/demo-agent", json={})).status_code == 200
    assert (await client.get("/_local/faults")).json() == {"faults": []}
    assert (await stats(client))["requests"]["create_task"] == {"200": 1, "503": 2}


async def test_faults_touch_only_their_route_and_queue_in_order(client: httpx.AsyncClient) -> None:
    await fault(client, route="list_agents", status=429)
    await fault(client, route="list_agents", status=500)
    assert (await client.get("/agents/demo-agent")).status_code == 200
    first = await client.get("/agents/list")
    assert first.status_code == 429
    assert "retry-after" not in first.headers
    assert first.json()["detail"] == "injected fault: list_agents answers 429"
    assert (await client.get("/agents/list")).status_code == 500
    assert (await client.get("/agents/list")).status_code == 200


async def test_a_fault_without_times_lasts_until_cleared(client: httpx.AsyncClient) -> None:
    await fault(client, route="get_agent", status=502, times=None)
    for _ in range(3):
        assert (await client.get("/agents/demo-agent")).status_code == 502
    assert (await client.delete("/_local/faults")).json() == {"faults": []}
    assert (await client.get("/agents/demo-agent")).status_code == 200


async def test_faults_come_before_the_key_check() -> None:
    async with LocalPlatform(api_keys=["k"]) as platform, httpx.AsyncClient(base_url=platform.url) as http:
        await fault(http, route="list_agents", status=503)
        assert (await http.get("/agents/list")).status_code == 503
        assert (await http.get("/agents/list")).status_code == 401


async def test_latency_fault_delays_the_real_answer(client: httpx.AsyncClient) -> None:
    task = await create(client, events_streaming=False)
    await fault(client, route="get_task", latency=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    resp = await client.get(f"/agent-execution/{task['id']}/status")
    assert resp.status_code == 200
    assert loop.time() - started >= 0.3
    started = loop.time()
    await fault(client, route="stop_task", latency=0.2, status=504)
    assert (await client.delete(f"/agent-execution/{task['id']}")).status_code == 504
    assert loop.time() - started >= 0.2


async def test_drop_after_events_cuts_the_stream_without_task_finished(client: httpx.AsyncClient) -> None:
    task = await create(client)
    await wait_status(client, task["id"], "completed")
    await fault(client, route="task_events", drop_after_events=3)
    frames = parse_sse(await read_until_cut(client, events_path(task["id"])))
    assert [frame.id for frame in frames] == [1, 2, 3]
    # The next stream is whole again, and a resume picks up where the cut one stopped.
    resumed = await read_stream(client, task["id"], headers={"Last-Event-ID": "3"})
    assert resumed[0].id == 4
    assert types(resumed)[-1] == "task_finished"
    assert (await stats(client))["open_event_streams"] == 0


async def test_drop_on_a_live_stream_and_at_zero(client: httpx.AsyncClient) -> None:
    task = await create(client, "#delay=0.01")
    await fault(client, route="task_events", drop_after_events=0)
    await fault(client, route="task_events", drop_after_events=6)
    for expected in ([], [1, 2, 3, 4, 5, 6]):
        text = await read_until_cut(client, events_path(task["id"]))
        assert [frame.id for frame in parse_sse(text)] == expected


@pytest.mark.parametrize(
    ("spec", "detail"),
    [
        ({"route": "nope", "status": 500}, "route"),
        ({"route": "get_task"}, "at least one of"),
        ({"route": "get_task", "status": 200}, "status"),
        ({"route": "get_task", "status": 500, "times": 0}, "times"),
        ({"route": "get_task", "drop_after_events": 1}, "task_events"),
        ({"route": "task_events", "drop_after_events": 1, "status": 500}, "exclude"),
        ({"route": "get_task", "latency": -1}, "latency"),
        ({"route": "get_task", "status": "500"}, "status"),
        ({"route": "get_task", "status": 500, "surprise": 1}, "surprise"),
    ],
)
async def test_invalid_faults_are_422(client: httpx.AsyncClient, spec: dict[str, Any], detail: str) -> None:
    resp = await client.post("/_local/faults", json=spec)
    assert resp.status_code == 422
    assert detail in resp.json()["detail"]
    assert (await client.post("/_local/faults", content=b"{")).status_code == 400


async def test_every_route_name_can_be_faulted(client: httpx.AsyncClient) -> None:
    task = await create(client)
    calls = {
        "create_task": ("POST", "/agent-execution/demo-agent"),
        "get_task": ("GET", f"/agent-execution/{task['id']}/status"),
        "stop_task": ("DELETE", f"/agent-execution/{task['id']}"),
        "update_task": ("PATCH", f"/agent-execution/{task['id']}/update"),
        "list_tasks": ("GET", "/agent-execution/executions/history/demo-agent"),
        "list_user_tasks": ("GET", "/agent-execution/executions/history/user/u"),
        "list_agents": ("GET", "/agents/list"),
        "get_agent": ("GET", "/agents/demo-agent"),
        "task_events": ("GET", events_path(task["id"])),
    }
    for name, (method, path) in calls.items():
        await fault(client, route=name, status=418)
        resp = await client.request(method, path, json={} if method in ("POST", "PATCH") else None)
        assert resp.status_code == 418, name
    counted = (await stats(client))["requests"]
    assert all(counted[name]["418"] == 1 for name in calls)


async def test_stats_count_routes_statuses_streams_and_tasks(client: httpx.AsyncClient) -> None:
    first = await create(client, "#never")
    await create(client, events_streaming=False)
    await client.get("/agent-execution/missing/status")
    reader = asyncio.create_task(read_stream(client, first["id"]))
    await wait_open_streams(client, 1)
    during = await stats(client)
    assert during["requests"]["task_events"] == {"200": 1}  # counted when the stream starts, not when it ends
    assert during["open_event_streams"] == 1
    await client.delete(f"/agent-execution/{first['id']}")
    await reader
    after = await stats(client)
    assert after["requests"]["create_task"] == {"200": 2}
    assert after["requests"]["get_task"] == {"404": 1}
    assert after["requests"]["stop_task"] == {"200": 1}
    assert (after["open_event_streams"], after["event_streams_opened"], after["tasks"]) == (0, 1, 2)
    assert "_local" not in str(after["requests"])  # control routes are not counted
    reset = (await client.delete("/_local/stats")).json()
    assert reset["requests"] == {}
    assert reset["tasks"] == 2


async def test_finished_tasks_beyond_the_bound_are_evicted_oldest_first() -> None:
    async with (
        LocalPlatform(max_finished_tasks=3, step_delay=0) as platform,
        httpx.AsyncClient(base_url=platform.url) as http,
    ):
        running = await create(http, "#never")
        ids = []
        for i in range(5):
            task = await create(http, f"task {i}")
            await wait_status(http, task["id"], "completed")
            ids.append(task["id"])
        codes = [(await http.get(f"/agent-execution/{task_id}/status")).status_code for task_id in ids]
        assert codes == [404, 404, 200, 200, 200]
        assert (await http.get(f"/agent-execution/{running['id']}/status")).status_code == 200
        document = await stats(http)
        assert (document["tasks"], document["running_tasks"], document["evicted_tasks"]) == (4, 1, 2)
        listed = (await http.get("/agent-execution/executions/history/demo-agent")).json()
        assert [item["id"] for item in listed] == [*reversed(ids[2:]), running["id"]]
        # A continued task is not evicted while it runs again, and counts as newly finished afterwards.
        body = {"id": ids[2], "input": {"text": "again"}}
        assert (await http.post("/agent-execution/demo-agent", json=body)).status_code == 200
        await wait_status(http, ids[2], "completed")
        newest = await create(http, "one more")
        await wait_status(http, newest["id"], "completed")
        assert (await http.get(f"/agent-execution/{ids[3]}/status")).status_code == 404
        assert (await http.get(f"/agent-execution/{ids[2]}/status")).status_code == 200

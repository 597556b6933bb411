"""The task event stream: framing, replay, resume, keep-alives, closing, continued tasks, directives."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import jsonschema

from bridge.localplatform import LocalPlatform
from tests.localplatform.helpers import (
    ORG,
    create,
    events,
    events_path,
    parse_sse,
    read_stream,
    stats,
    types,
    wait_open_streams,
    wait_status,
)

DEMO_TYPES = ["task_created", "task_updated", "think", "tool_call_request", "tool_call_result"]
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


async def test_demo_agent_stream_from_created_to_finished(client: httpx.AsyncClient) -> None:
    task = await create(client, "count these words #chunks=4")
    frames = await read_stream(client, task["id"])
    assert [frame.id for frame in frames if frame.data] == list(range(1, 11))
    assert types(frames) == [*DEMO_TYPES, "chunk", "chunk", "chunk", "chunk", "task_finished"]
    envelopes = events(frames)
    for envelope in envelopes:
        assert envelope.keys() == {"type", "task_id", "organization_id", "time", "data"}
        assert (envelope["task_id"], envelope["organization_id"]) == (task["id"], ORG)
        assert ISO_Z.match(envelope["time"])
    assert [e["time"] for e in envelopes] == sorted(e["time"] for e in envelopes)
    statuses = [e["data"]["status"] for e in envelopes if e["type"].startswith("task_")]
    assert statuses == ["pending", "executing", "completed"]
    finished = envelopes[-1]["data"]
    assert "".join(e["data"] for e in envelopes if e["type"] == "chunk") == finished["result"]
    assert finished["result"] == 'The prompt "count these words" has 3 words.'
    assert finished["finished_at"]
    assert finished["tokens"]["total_tokens"] > 0
    request, result = envelopes[3]["data"], envelopes[4]["data"]
    assert request["tool_name"] == "word_count"
    assert request["payload"] == {"text": "count these words"}
    assert result["request_id"] == request["request_id"]
    assert result["result"] == {"words": 3}


async def test_a_late_subscriber_gets_everything_and_the_stream_closes(client: httpx.AsyncClient) -> None:
    task = await create(client)
    await wait_status(client, task["id"], "completed")
    first = await read_stream(client, task["id"])
    second = await read_stream(client, task["id"])
    assert first == second
    assert types(first)[0] == "task_created"
    assert types(first)[-1] == "task_finished"


async def test_last_event_id_resumes_after_that_event(client: httpx.AsyncClient) -> None:
    task = await create(client)
    full = await read_stream(client, task["id"])
    resumed = await read_stream(client, task["id"], headers={"Last-Event-ID": "3"})
    assert resumed == full[3:]
    assert await read_stream(client, task["id"], headers={"Last-Event-ID": "0"}) == full
    assert await read_stream(client, task["id"], headers={"Last-Event-ID": str(len(full))}) == []
    assert await read_stream(client, task["id"], headers={"Last-Event-ID": "999"}) == []
    resp = await client.get(events_path(task["id"]), headers={"Last-Event-ID": "abc"})
    assert resp.status_code == 400
    assert "Last-Event-ID" in resp.json()["detail"]


async def test_resuming_a_live_stream_mid_way(client: httpx.AsyncClient) -> None:
    task = await create(client, "#delay=0.02")
    async with client.stream("GET", events_path(task["id"])) as stream:
        lines = stream.aiter_lines()
        while (await anext(lines)) != "id: 2":
            pass
    resumed = await read_stream(client, task["id"], headers={"Last-Event-ID": "2"})
    assert resumed[0].id == 3
    assert types(resumed)[-1] == "task_finished"


async def test_keepalives_are_comments_while_the_task_is_idle(client: httpx.AsyncClient) -> None:
    task = await create(client, "#pause")
    await wait_status(client, task["id"], "paused")
    async with client.stream("GET", events_path(task["id"])) as stream:
        text = ""
        async with asyncio.timeout(5):
            async for chunk in stream.aiter_text():
                text += chunk
                if text.count(": keepalive\n\n") >= 2:
                    break
    frames = parse_sse(text)
    assert types(frames) == ["task_created", "task_updated", "think", "task_updated"]
    assert [frame.comment for frame in frames if frame.comment is not None] == ["keepalive", "keepalive"]
    assert events(frames)[-1]["data"]["status"] == "paused"
    await client.delete(f"/agent-execution/{task['id']}")


async def test_stop_ends_every_open_stream(client: httpx.AsyncClient) -> None:
    task = await create(client, "#never")
    readers = [asyncio.create_task(read_stream(client, task["id"])) for _ in range(3)]
    await wait_status(client, task["id"], "executing")
    await wait_open_streams(client, 3)
    await client.delete(f"/agent-execution/{task['id']}")
    results = await asyncio.gather(*readers)
    for frames in results:
        assert types(frames) == [*DEMO_TYPES, "task_finished"]
        finished = events(frames)[-1]["data"]
        assert (finished["status"], finished["is_manually_stopped"]) == ("stopped", True)
    assert results[0] == results[1] == results[2]
    assert (await stats(client))["open_event_streams"] == 0


async def test_a_client_hanging_up_closes_its_stream(client: httpx.AsyncClient) -> None:
    task = await create(client, "#never")
    async with client.stream("GET", events_path(task["id"])) as stream:
        await anext(stream.aiter_lines())
        assert (await stats(client))["open_event_streams"] == 1
    await wait_open_streams(client, 0)
    await client.delete(f"/agent-execution/{task['id']}")


async def test_platform_stop_ends_open_streams_promptly() -> None:
    platform = LocalPlatform(keepalive_interval=30)
    await platform.start()
    async with httpx.AsyncClient(base_url=platform.url) as http:
        task = await create(http, "#never")
        reader = asyncio.create_task(read_stream(http, task["id"]))
        await wait_status(http, task["id"], "executing")
        await wait_open_streams(http, 1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await platform.stop()
        assert (
            loop.time() - started < 1.5
        )  # neither a keep-alive (30 s) nor the 2 s shutdown grace was awaited
        frames = await reader
        assert types(frames)[:2] == ["task_created", "task_updated"]
        assert "task_finished" not in types(frames)


async def test_a_task_without_events_streaming_cannot_be_streamed(client: httpx.AsyncClient) -> None:
    task = await create(client, events_streaming=False)
    resp = await client.get(events_path(task["id"]))
    assert resp.status_code == 409
    assert resp.headers["content-type"] == "application/json"
    assert "events_streaming" in resp.json()["detail"]
    assert (await client.get(events_path("nope"))).status_code == 404


async def test_a_continued_task_appends_a_run_to_the_same_stream(client: httpx.AsyncClient) -> None:
    task = await create(client, "first")
    first_run = await read_stream(client, task["id"])
    body = {"id": task["id"], "input": {"text": "second"}, "events_streaming": True}
    assert (await client.post("/agent-execution/demo-agent", json=body)).status_code == 200
    # A new reader starts at the newest run, so an SDK consumer never stops at the previous run's end.
    second_run = await read_stream(client, task["id"])
    assert second_run[0].id == len(first_run) + 1
    assert types(second_run) == types(first_run)
    assert events(second_run)[0]["data"]["status"] == "pending"
    assert events(second_run)[-1]["data"]["result"] == 'The prompt "second" has 1 word.'
    everything = await read_stream(client, task["id"], headers={"Last-Event-ID": "0"})
    assert everything == first_run + second_run


async def test_a_reader_of_one_run_ends_at_that_runs_end(client: httpx.AsyncClient) -> None:
    task = await create(client, "first #delay=0.01")
    reader = asyncio.create_task(read_stream(client, task["id"]))
    frames = await reader
    body = {"id": task["id"], "input": {"text": "second"}, "events_streaming": True}
    assert (await client.post("/agent-execution/demo-agent", json=body)).status_code == 200
    assert types(frames).count("task_created") == 1
    assert events(frames)[-1]["data"]["result"] == 'The prompt "first" has 1 word.'


async def test_a_reader_of_an_unfinished_run_follows_the_continuation(client: httpx.AsyncClient) -> None:
    task = await create(client, "#pause")
    reader = asyncio.create_task(read_stream(client, task["id"]))
    await wait_status(client, task["id"], "paused")
    await wait_open_streams(client, 1)  # connected before the continuation, so it reads the paused run
    body = {"id": task["id"], "input": {"text": "resume"}, "events_streaming": True}
    assert (await client.post("/agent-execution/demo-agent", json=body)).status_code == 200
    frames = await reader
    # The paused run never finished, so the reader went on into the continuation and ended at its finish.
    assert types(frames).count("task_created") == 2
    assert events(frames)[-1]["data"]["result"] == 'The prompt "resume" has 1 word.'


async def test_fail_directive_ends_failed_with_an_error_result(client: httpx.AsyncClient) -> None:
    task = await create(client, "break #fail")
    frames = await read_stream(client, task["id"])
    assert types(frames) == [*DEMO_TYPES, "task_finished"]
    assert events(frames)[4]["data"]["is_error"] is True
    finished = events(frames)[-1]["data"]
    assert finished["status"] == "failed"
    assert "failed" in finished["result"]


async def test_delay_directive_paces_the_steps(client: httpx.AsyncClient) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = await create(client, "slow #delay=0.05 #chunks=1")
    frames = await read_stream(client, task["id"])
    # executing, think, request, result, one chunk, finished: six steps of 0.05 s.
    assert loop.time() - started >= 0.3
    assert types(frames).count("chunk") == 1


async def test_echo_agent_streams_the_prompt_back(client: httpx.AsyncClient) -> None:
    task = await create(client, "say it again #chunks=2", agent="echo-agent")
    frames = await read_stream(client, task["id"])
    assert types(frames) == ["task_created", "task_updated", "chunk", "chunk", "task_finished"]
    assert events(frames)[-1]["data"]["result"] == "say it again"


async def test_json_output_is_valid_against_the_requested_schema(client: httpx.AsyncClient) -> None:
    schema = {
        "type": "object",
        "properties": {
            "summary": {"type": "string", "minLength": 10},
            "items": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2},
            "level": {"enum": ["low", "high"]},
            "ok": {"type": "boolean"},
        },
        "required": ["summary", "items", "level", "ok"],
        "additionalProperties": False,
    }
    task = await create(client, "describe it", output_format="json", output_schema=schema)
    frames = await read_stream(client, task["id"])
    result = events(frames)[-1]["data"]["result"]
    assert "".join(e["data"] for e in events(frames) if e["type"] == "chunk") == result
    jsonschema.validate(json.loads(result), schema)


async def test_many_concurrent_subscribers_see_the_same_stream(client: httpx.AsyncClient) -> None:
    task = await create(client, "#delay=0.01")
    results = await asyncio.gather(*(read_stream(client, task["id"]) for _ in range(20)))
    assert all(frames == results[0] for frames in results)
    assert types(results[0])[-1] == "task_finished"

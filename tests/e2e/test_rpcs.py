"""Every RPC over real sockets: gRPC client -> bridge -> local platform, and back."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2

from bridge.localplatform import LocalPlatform
from bridge.server import BridgeServer
from tests.e2e.harness import PlatformControl, Stack, bridge_settings, failure_of
from xpander.bridge.v1 import events_pb2, task_pb2, task_service_pb2, task_service_pb2_grpc

Request = task_service_pb2


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(value)
    return message


def full_create_request() -> task_service_pb2.CreateTaskRequest:
    """A CreateTaskRequest with every field set."""
    return Request.CreateTaskRequest(
        agent_id="demo-agent",
        prompt="one two three",
        file_urls=["https://example.com/report.pdf"],
        user_details=task_pb2.User(
            id="user-1",
            email="ada@example.com",
            first_name="Ada",
            last_name="Lovelace",
            timezone="Europe/London",
            additional_attributes=struct({"team": "engines"}),
        ),
        agent_version="1",
        tool_call_payload_extension=struct({"trace": "abc"}),
        source="api",
        worker_id="worker-7",
        run_locally=True,
        output_format=task_pb2.OUTPUT_FORMAT_JSON,
        output_schema=struct(
            {"type": "object", "properties": {"count": {"type": "integer"}}, "required": ["count"]}
        ),
        events_streaming=True,
        additional_context="context",
        instructions_override="be brief",
        test_run_node_id="node-1",
        user_oidc_token="oidc-token-value",
        expected_output="a count",
        mcp_servers=[
            task_pb2.MCPServerDetails(
                name="search",
                type=task_pb2.MCP_SERVER_TYPE_REMOTE,
                url="https://mcp.example.com/mcp",
                transport=task_pb2.MCP_SERVER_TRANSPORT_SSE,
                auth_type=task_pb2.MCP_SERVER_AUTH_TYPE_API_KEY,
                api_key="mcp-key",
                headers={"x-team": "engines"},
                allowed_tools=["find"],
            ),
            task_pb2.MCPServerDetails(
                name="local", type=task_pb2.MCP_SERVER_TYPE_LOCAL, command="mcp-server --stdio"
            ),
        ],
        triggering_agent_id="agent-0",
        title="Counting",
        think_mode=task_pb2.THINK_MODE_HARDER,
        disable_attachment_injection=True,
        return_metrics=True,
        user_tokens=struct({"github": "gh-token-value"}),
        tool_call_limit=4,
        llm_model_provider="openai",
        llm_model_name="gpt-4.1",
        llm_reasoning_effort=task_pb2.LLM_REASONING_EFFORT_HIGH,
        harness_cli=" Claude-Code ",
        permission_mode="GATED",
        attachments=[
            task_pb2.Attachment(
                url="https://example.com/a.png",
                name="a.png",
                mime="image/png",
                size=10,
                kind=task_pb2.ATTACHMENT_KIND_IMAGE,
            )
        ],
        principal=task_pb2.Principal(kind=task_pb2.PRINCIPAL_KIND_USER, id="user-1", email="ada@example.com"),
    )


async def test_create_task_carries_every_field(stack: Stack) -> None:
    task = (await stack.stub.CreateTask(full_create_request(), timeout=10)).task
    assert task.id
    assert (task.agent_id, task.organization_id) == ("demo-agent", stack.platform.organization_id)
    assert task.status == task_pb2.TASK_STATUS_PENDING
    assert task.input.text == "one two three"
    assert list(task.input.files) == ["https://example.com/report.pdf"]
    assert (task.input.user.id, task.input.user.email, task.input.user.timezone) == (
        "user-1",
        "ada@example.com",
        "Europe/London",
    )
    assert json_format.MessageToDict(task.input.user.additional_attributes) == {"team": "engines"}
    assert task.input.attachments[0].kind == task_pb2.ATTACHMENT_KIND_IMAGE
    assert task.input.principal.kind == task_pb2.PRINCIPAL_KIND_USER
    assert task.agent_version == "1"
    assert json_format.MessageToDict(task.payload_extension) == {"trace": "abc"}
    assert task.source == "api"
    assert task.output_format == task_pb2.OUTPUT_FORMAT_JSON
    assert json_format.MessageToDict(task.output_schema)["required"] == ["count"]
    assert task.events_streaming
    assert (task.additional_context, task.instructions_override, task.test_run_node_id) == (
        "context",
        "be brief",
        "node-1",
    )
    assert task.user_oidc_token == "oidc-token-value"
    assert (task.expected_output, task.triggering_agent_id, task.title) == ("a count", "agent-0", "Counting")
    remote, local = task.mcp_servers
    assert (remote.name, remote.url, remote.transport, remote.auth_type) == (
        "search",
        "https://mcp.example.com/mcp",
        task_pb2.MCP_SERVER_TRANSPORT_SSE,
        task_pb2.MCP_SERVER_AUTH_TYPE_API_KEY,
    )
    assert dict(remote.headers) == {"x-team": "engines"}
    assert (local.command, local.transport) == ("mcp-server --stdio", task_pb2.MCP_SERVER_TRANSPORT_STDIO)
    assert task.think_mode == task_pb2.THINK_MODE_HARDER
    assert task.disable_attachment_injection
    assert task.return_metrics
    assert json_format.MessageToDict(task.user_tokens) == {"github": "gh-token-value"}
    assert task.tool_call_limit == 4
    assert (task.llm_model_provider, task.llm_model_name) == ("openai", "gpt-4.1")
    assert task.llm_reasoning_effort == task_pb2.LLM_REASONING_EFFORT_HIGH
    assert (task.harness_cli, task.permission_mode) == ("claude-code", "gated")
    assert task.HasField("created_at")
    assert await stack.control.requests("create_task") == {"200": 1}


async def test_minimal_create_uses_the_sdk_defaults(stack: Stack) -> None:
    task = (await stack.stub.CreateTask(Request.CreateTaskRequest(agent_id="echo-agent"), timeout=10)).task
    assert task.input.text == ""
    assert task.source == "sdk"
    assert task.think_mode == task_pb2.THINK_MODE_DEFAULT
    assert not task.events_streaming


async def test_stream_follows_the_task_to_its_end(stack: Stack) -> None:
    task = (await stack.create("count these four words")).task
    messages = await stack.stream(task.id)
    events = [message.event for message in messages]
    assert [event.sequence for event in events] == list(range(1, len(events) + 1))
    assert [event.type for event in events] == [
        events_pb2.TASK_EVENT_TYPE_TASK_CREATED,
        events_pb2.TASK_EVENT_TYPE_TASK_UPDATED,
        events_pb2.TASK_EVENT_TYPE_THINK,
        events_pb2.TASK_EVENT_TYPE_TOOL_CALL_REQUEST,
        events_pb2.TASK_EVENT_TYPE_TOOL_CALL_RESULT,
        events_pb2.TASK_EVENT_TYPE_CHUNK,
        events_pb2.TASK_EVENT_TYPE_CHUNK,
        events_pb2.TASK_EVENT_TYPE_CHUNK,
        events_pb2.TASK_EVENT_TYPE_TASK_FINISHED,
    ]
    assert all(event.task_id == task.id for event in events)
    finished = events[-1].task
    assert finished.status == task_pb2.TASK_STATUS_COMPLETED
    assert "".join(event.chunk for event in events if event.HasField("chunk")) == finished.result
    assert events[3].tool_call.tool_name == "word_count"
    assert json_format.MessageToDict(events[4].tool_call.result) == {"words": 4}


async def test_stream_of_a_finished_task_replays_it(stack: Stack) -> None:
    task = (await stack.create()).task
    live = [m.event for m in await stack.stream(task.id)]
    replayed = [m.event for m in await stack.stream(task.id)]
    assert [(e.sequence, e.type_name) for e in replayed] == [(e.sequence, e.type_name) for e in live]
    assert replayed[-1].type == events_pb2.TASK_EVENT_TYPE_TASK_FINISHED


async def test_get_and_stop(stack: Stack) -> None:
    task = (await stack.create("wait for me #never")).task
    got = (await stack.stub.GetTask(Request.GetTaskRequest(task_id=task.id), timeout=10)).task
    assert got.id == task.id
    assert got.status in (task_pb2.TASK_STATUS_PENDING, task_pb2.TASK_STATUS_EXECUTING)
    stopped = (await stack.stub.StopTask(Request.StopTaskRequest(task_id=task.id), timeout=10)).task
    assert stopped.status == task_pb2.TASK_STATUS_STOPPED
    assert stopped.is_manually_stopped
    after = (await stack.stub.GetTask(Request.GetTaskRequest(task_id=task.id), timeout=10)).task
    assert after.status == task_pb2.TASK_STATUS_STOPPED
    again = (await stack.stub.StopTask(Request.StopTaskRequest(task_id=task.id), timeout=10)).task
    assert again.status == task_pb2.TASK_STATUS_STOPPED


async def test_existing_task_id_continues_the_task(stack: Stack) -> None:
    first = (await stack.create("first run")).task
    await stack.stream(first.id)
    second = (await stack.create("second run", existing_task_id=first.id)).task
    assert second.id == first.id
    events = [m.event for m in await stack.stream(second.id)]
    # Without after_sequence the platform starts at the newest run; sequences keep counting across runs.
    assert events[0].type == events_pb2.TASK_EVENT_TYPE_TASK_CREATED
    assert events[0].sequence > 1
    assert events[-1].task.input.text == "second run"


async def test_list_by_agent_and_by_user_with_filters(stack: Stack) -> None:
    ada = task_pb2.User(id="ada", email="ada@example.com")
    done = (await stack.create("a", user_details=ada)).task
    await stack.stream(done.id)
    running = (await stack.create("b #never", user_details=ada)).task
    other = (await stack.create("c", agent_id="echo-agent")).task

    by_agent = await stack.stub.ListTasks(Request.ListTasksRequest(agent_id="demo-agent"), timeout=10)
    assert [t.id for t in by_agent.tasks] == [running.id, done.id]  # newest first
    assert by_agent.total_size == 2
    assert not by_agent.next_page_token
    assert by_agent.tasks[1].user_id == "ada"
    assert by_agent.tasks[1].HasField("updated_at")

    by_user = await stack.stub.ListTasks(Request.ListTasksRequest(user_id="ada"), timeout=10)
    assert {t.id for t in by_user.tasks} == {running.id, done.id}

    completed = await stack.stub.ListTasks(
        Request.ListTasksRequest(user_id="ada", status=task_pb2.TASK_STATUS_COMPLETED), timeout=10
    )
    assert [t.id for t in completed.tasks] == [done.id]
    assert completed.tasks[0].status == task_pb2.TASK_STATUS_COMPLETED

    both = await stack.stub.ListTasks(
        Request.ListTasksRequest(agent_id="echo-agent", user_id="ada"), timeout=10
    )
    assert list(both.tasks) == []
    echo = await stack.stub.ListTasks(
        Request.ListTasksRequest(agent_id="echo-agent", triggering_agent_id="nobody"), timeout=10
    )
    assert echo.total_size == 0
    assert other.id
    requests = (await stack.control.stats())["requests"]
    assert requests["list_tasks"] == {"200": 3}
    assert requests["list_user_tasks"] == {"200": 2}


async def test_pagination_walks_every_task_once(stack: Stack) -> None:
    created = [(await stack.create(f"task {n}", streaming=False)).task.id for n in range(5)]
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await stack.stub.ListTasks(
            Request.ListTasksRequest(agent_id="demo-agent", page_size=2, page_token=token), timeout=10
        )
        pages += 1
        assert page.total_size == 5
        seen += [t.id for t in page.tasks]
        token = page.next_page_token
        if not token:
            break
    assert pages == 3
    assert seen == created[::-1]


async def test_page_token_must_match_the_filters(stack: Stack) -> None:
    for n in range(3):
        await stack.create(f"task {n}", streaming=False)
    first = await stack.stub.ListTasks(
        Request.ListTasksRequest(agent_id="demo-agent", page_size=1), timeout=10
    )
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stack.stub.ListTasks(
            Request.ListTasksRequest(agent_id="echo-agent", page_size=1, page_token=first.next_page_token),
            timeout=10,
        )
    failure = failure_of(error.value)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.fields == ["page_token"]


async def test_per_call_credentials_reach_the_platform() -> None:
    async with LocalPlatform(api_keys=("good-key",), step_delay=0.005) as platform:
        control = PlatformControl(platform.url)
        settings = bridge_settings(platform, api_key=None, organization_id=None)
        async with BridgeServer(settings) as bridge, grpc.aio.insecure_channel(bridge.address) as channel:
            stub = task_service_pb2_grpc.TaskServiceStub(channel)
            create = Request.CreateTaskRequest(agent_id="demo-agent", events_streaming=True)
            task = (await stub.CreateTask(create, metadata=[("x-api-key", "good-key")], timeout=10)).task
            bearer = [("authorization", "Bearer good-key")]
            assert (
                await stub.GetTask(Request.GetTaskRequest(task_id=task.id), metadata=bearer, timeout=10)
            ).task

            with pytest.raises(grpc.aio.AioRpcError) as wrong:
                await stub.GetTask(Request.GetTaskRequest(task_id=task.id), metadata=[("x-api-key", "bad")])
            assert wrong.value.code() == grpc.StatusCode.PERMISSION_DENIED

            # The organization travels per call too: it names the event stream's path.
            stream_request = Request.StreamEventsRequest(task_id=task.id)
            good = [("x-api-key", "good-key"), ("x-organization-id", platform.organization_id)]
            events = [m async for m in stub.StreamEvents(stream_request, metadata=good, timeout=10)]
            assert events[-1].event.type == events_pb2.TASK_EVENT_TYPE_TASK_FINISHED
            other_org = [("x-api-key", "good-key"), ("x-organization-id", "someone-else")]
            with pytest.raises(grpc.aio.AioRpcError) as foreign:
                async for _ in stub.StreamEvents(stream_request, metadata=other_org, timeout=10):
                    pass
            assert foreign.value.code() == grpc.StatusCode.PERMISSION_DENIED
            without_org = [("x-api-key", "good-key")]
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                async for _ in stub.StreamEvents(stream_request, metadata=without_org, timeout=10):
                    pass
            assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "x-organization-id" in (missing.value.details() or "")
        await control.aclose()


async def test_calls_run_concurrently_on_one_pool(stack: Stack) -> None:
    tasks = await asyncio.gather(*(stack.create(f"parallel {n}") for n in range(20)))
    streams = await asyncio.gather(*(stack.stream(t.task.id) for t in tasks))
    assert all(s[-1].event.type == events_pb2.TASK_EVENT_TYPE_TASK_FINISHED for s in streams)

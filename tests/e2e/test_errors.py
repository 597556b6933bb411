"""The error table row by row, driven by the local platform's fault injection; and the bridge's own checks."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from aiohttp import web

from bridge.errors import DOMAIN
from bridge.server import BridgeServer
from tests.e2e.harness import RpcFailure, Stack, bridge_stack, failure_of
from xpander.bridge.v1 import task_pb2, task_service_pb2, task_service_pb2_grpc

Request = task_service_pb2
Code = grpc.StatusCode

# HTTP status -> (gRPC code, whether RetryInfo carries Retry-After).
ERROR_TABLE: dict[int, tuple[grpc.StatusCode, bool]] = {
    400: (Code.INVALID_ARGUMENT, False),
    401: (Code.UNAUTHENTICATED, False),
    403: (Code.PERMISSION_DENIED, False),
    404: (Code.NOT_FOUND, False),
    409: (Code.ABORTED, False),
    418: (Code.FAILED_PRECONDITION, False),
    422: (Code.INVALID_ARGUMENT, False),
    429: (Code.RESOURCE_EXHAUSTED, True),
    499: (Code.CANCELLED, False),
    500: (Code.INTERNAL, False),
    501: (Code.UNIMPLEMENTED, False),
    502: (Code.UNAVAILABLE, True),
    503: (Code.UNAVAILABLE, True),
    504: (Code.DEADLINE_EXCEEDED, False),
    507: (Code.INTERNAL, False),
}

Call = Callable[[Stack, str], Awaitable[Any]]


async def drain(call: Any) -> list[Any]:
    return [message async for message in call]


async def failure(call: Awaitable[Any]) -> RpcFailure:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return failure_of(error.value)


ROUTE_CALLS: dict[str, Call] = {
    "create_task": lambda s, task_id: s.stub.CreateTask(
        Request.CreateTaskRequest(agent_id="demo-agent"), timeout=5
    ),
    "get_task": lambda s, task_id: s.stub.GetTask(Request.GetTaskRequest(task_id=task_id), timeout=5),
    "stop_task": lambda s, task_id: s.stub.StopTask(Request.StopTaskRequest(task_id=task_id), timeout=5),
    "list_tasks": lambda s, task_id: s.stub.ListTasks(
        Request.ListTasksRequest(agent_id="demo-agent"), timeout=5
    ),
    "list_user_tasks": lambda s, task_id: s.stub.ListTasks(Request.ListTasksRequest(user_id="u1"), timeout=5),
}


@pytest.mark.parametrize("route", sorted(ROUTE_CALLS))
async def test_every_status_maps_by_meaning(stack: Stack, route: str) -> None:
    task_id = (await stack.create()).task.id
    for status, (code, retry_info) in ERROR_TABLE.items():
        detail = f"injected {status} on {route}"
        await stack.control.fault(route, status=status, retry_after=3 if retry_info else None, detail=detail)
        got = await failure(ROUTE_CALLS[route](stack, task_id))
        assert got.code == code, status
        assert detail in got.message
        assert got.error_info is not None
        assert got.error_info.domain == DOMAIN
        assert got.error_info.reason == f"UPSTREAM_{code.name}"
        assert dict(got.error_info.metadata) == {"http_status": str(status), "route": route}
        if retry_info:
            assert got.retry_info is not None
            assert got.retry_info.retry_delay.seconds == 3
        else:
            assert got.retry_info is None
    assert await stack.control.requests(route) == {str(status): 1 for status in ERROR_TABLE} | (
        {"200": 1} if route == "create_task" else {}
    )


@pytest.mark.parametrize(
    ("status", "code"), [(403, Code.PERMISSION_DENIED), (404, Code.NOT_FOUND), (422, Code.INVALID_ARGUMENT)]
)
async def test_event_stream_errors_end_the_stream_before_any_message(
    stack: Stack, status: int, code: grpc.StatusCode
) -> None:
    task_id = (await stack.create()).task.id
    await stack.control.fault("task_events", status=status, detail="refused by the platform")
    received: list[Any] = []

    async def follow() -> None:
        async for message in stack.stub.StreamEvents(Request.StreamEventsRequest(task_id=task_id), timeout=5):
            received.append(message)

    got = await failure(follow())
    assert got.code == code
    assert received == []
    assert got.error_info is not None
    assert dict(got.error_info.metadata) == {"http_status": str(status), "route": "task_events"}


async def test_unknown_task_stream_is_not_found_before_any_message(stack: Stack) -> None:
    got = await failure(drain(stack.stub.StreamEvents(Request.StreamEventsRequest(task_id="no-such-task"))))
    assert got.code == Code.NOT_FOUND
    assert "no-such-task" in got.message


async def test_stream_of_a_task_without_streaming_is_failed_precondition(stack: Stack) -> None:
    task_id = (await stack.create(streaming=False)).task.id
    got = await failure(drain(stack.stub.StreamEvents(Request.StreamEventsRequest(task_id=task_id))))
    assert got.code == Code.FAILED_PRECONDITION
    assert f"task {task_id} was not created with events_streaming" in got.message
    # The stream is tried first; its refusal (409 here) makes the bridge read the task to say why.
    assert await stack.control.requests("task_events") == {"409": 1}
    assert await stack.control.requests("get_task") == {"200": 1}


async def test_upstream_slower_than_the_deadline_is_deadline_exceeded(stack: Stack) -> None:
    task_id = (await stack.create()).task.id
    await stack.control.fault("get_task", latency=1.0)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stack.stub.GetTask(Request.GetTaskRequest(task_id=task_id), timeout=0.2)
    assert error.value.code() == Code.DEADLINE_EXCEEDED


async def test_upstream_slower_than_the_read_timeout_is_deadline_exceeded_with_details() -> None:
    async with bridge_stack(upstream_read_timeout=0.2) as stack:
        task_id = (await stack.create()).task.id
        await stack.control.fault("get_task", latency=1.0)
        got = await failure(stack.stub.GetTask(Request.GetTaskRequest(task_id=task_id), timeout=5))
        assert got.code == Code.DEADLINE_EXCEEDED
        assert got.error_info is not None
        assert got.error_info.reason == "UPSTREAM_TIMEOUT"
        assert got.error_info.metadata["route"] == "get_task"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_connection_refused_is_unavailable() -> None:
    async with bridge_stack() as stack:
        refused = f"http://127.0.0.1:{free_port()}"
        settings = stack.bridge.settings.model_copy(update={"base_url": refused})
        async with BridgeServer(settings) as bridge, grpc.aio.insecure_channel(bridge.address) as channel:
            stub = task_service_pb2_grpc.TaskServiceStub(channel)
            for call in (
                stub.GetTask(Request.GetTaskRequest(task_id="t1"), timeout=5),
                stub.CreateTask(Request.CreateTaskRequest(agent_id="demo-agent"), timeout=5),
            ):
                got = await failure(call)
                assert got.code == Code.UNAVAILABLE
                assert got.error_info is not None
                assert got.error_info.reason == "UPSTREAM_UNREACHABLE"
            # A stream retries the connection like any drop before giving up, naming where to resume.
            got = await failure(
                drain(stub.StreamEvents(Request.StreamEventsRequest(task_id="t1"), timeout=5))
            )
            assert got.code == Code.UNAVAILABLE
            assert got.error_info is not None
            assert got.error_info.reason == "UPSTREAM_STREAM_LOST"
            assert got.error_info.metadata["last_sequence"] == "0"
            assert "could not connect to the platform" in got.message


# --- An upstream that answers something the bridge cannot read ----------------------------------------------


@pytest.fixture
async def garbled_upstream() -> AsyncIterator[str]:
    """An HTTP server answering 200 with HTML, or with JSON of the wrong shape under /shape/."""

    async def answer(request: web.Request) -> web.Response:
        if request.path.startswith("/shape/"):
            return web.json_response({"id": 5, "agent_id": "a", "organization_id": "o", "input": {}})
        return web.Response(text="<html>maintenance</html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


async def test_a_body_that_is_not_the_expected_json_is_internal_naming_the_route(
    garbled_upstream: str,
) -> None:
    async with bridge_stack() as stack:
        for base_url, problem in ((garbled_upstream, "text/html"), (garbled_upstream + "/shape", "id")):
            settings = stack.bridge.settings.model_copy(update={"base_url": base_url})
            async with BridgeServer(settings) as bridge, grpc.aio.insecure_channel(bridge.address) as channel:
                stub = task_service_pb2_grpc.TaskServiceStub(channel)
                for route, call in (
                    ("get_task", stub.GetTask(Request.GetTaskRequest(task_id="t1"), timeout=5)),
                    ("create_task", stub.CreateTask(Request.CreateTaskRequest(agent_id="a"), timeout=5)),
                ):
                    got = await failure(call)
                    assert got.code == Code.INTERNAL
                    assert route in got.message
                    assert problem in got.message
                    assert got.error_info is not None
                    assert got.error_info.reason == "UPSTREAM_MALFORMED_RESPONSE"
                    assert "Traceback" not in got.message


# --- The bridge's own validation: the field is named and the platform is never called -----------------------


BAD_REQUESTS: list[tuple[str, Callable[[Stack], Awaitable[Any]], list[str]]] = [
    ("unsafe task id", lambda s: s.stub.GetTask(Request.GetTaskRequest(task_id="../admin")), ["task_id"]),
    ("empty task id", lambda s: s.stub.StopTask(Request.StopTaskRequest(task_id="")), ["task_id"]),
    ("encoded slash", lambda s: s.stub.GetTask(Request.GetTaskRequest(task_id="a%2Fb")), ["task_id"]),
    ("unsafe agent id", lambda s: s.stub.CreateTask(Request.CreateTaskRequest(agent_id="a/b")), ["agent_id"]),
    (
        "bad file URL",
        lambda s: s.stub.CreateTask(
            Request.CreateTaskRequest(agent_id="demo-agent", file_urls=["ftp://x/y"])
        ),
        ["file_urls[0]"],
    ),
    (
        "user without email",
        lambda s: s.stub.CreateTask(
            Request.CreateTaskRequest(agent_id="demo-agent", user_details=task_pb2.User(id="u"))
        ),
        ["user_details.email"],
    ),
    (
        "schema without JSON output",
        lambda s: s.stub.CreateTask(
            Request.CreateTaskRequest(agent_id="demo-agent", output_schema={"type": "object"})  # type: ignore[arg-type]
        ),
        ["output_schema"],
    ),
    (
        "invalid schema",
        lambda s: s.stub.CreateTask(
            Request.CreateTaskRequest(
                agent_id="demo-agent",
                output_format=task_pb2.OUTPUT_FORMAT_JSON,
                output_schema={"type": "no-such-type"},  # type: ignore[arg-type]
            )
        ),
        ["output_schema"],
    ),
    (
        "remote MCP server without URL",
        lambda s: s.stub.CreateTask(
            Request.CreateTaskRequest(
                agent_id="demo-agent",
                mcp_servers=[task_pb2.MCPServerDetails(type=task_pb2.MCP_SERVER_TYPE_REMOTE)],
            )
        ),
        ["mcp_servers[0].url"],
    ),
    (
        "list without agent or user",
        lambda s: s.stub.ListTasks(Request.ListTasksRequest()),
        ["agent_id", "user_id"],
    ),
    (
        "negative page size",
        lambda s: s.stub.ListTasks(Request.ListTasksRequest(agent_id="demo-agent", page_size=-5)),
        ["page_size"],
    ),
    (
        "forged page token",
        lambda s: s.stub.ListTasks(Request.ListTasksRequest(agent_id="demo-agent", page_token="forged")),
        ["page_token"],
    ),
    (
        "unsafe stream task id",
        lambda s: drain(s.stub.StreamEvents(Request.StreamEventsRequest(task_id="a?b"))),
        ["task_id"],
    ),
    (
        "negative heartbeat",
        lambda s: drain(
            s.stub.StreamEvents(
                Request.StreamEventsRequest(task_id="t1", heartbeat_interval={"seconds": -1})  # type: ignore[arg-type]
            )
        ),
        ["heartbeat_interval"],
    ),
    (
        "unsafe organization metadata",
        lambda s: s.stub.GetTask(
            Request.GetTaskRequest(task_id="t1"), metadata=[("x-organization-id", "a/b")]
        ),
        ["x-organization-id"],
    ),
]


@pytest.mark.parametrize(("case", "call", "fields"), BAD_REQUESTS, ids=[case for case, _, _ in BAD_REQUESTS])
async def test_bad_input_names_the_field_and_never_reaches_the_platform(
    stack: Stack, case: str, call: Callable[[Stack], Awaitable[Any]], fields: list[str]
) -> None:
    got = await failure(call(stack))
    assert got.code == Code.INVALID_ARGUMENT, got.message
    assert got.fields == fields
    assert got.error_info is not None
    assert got.error_info.domain == DOMAIN
    assert (await stack.control.stats())["requests"] == {}


async def test_missing_key_is_unauthenticated_without_calling_the_platform() -> None:
    async with bridge_stack(api_key=None) as stack:
        calls: list[Awaitable[Any]] = [
            stack.stub.CreateTask(Request.CreateTaskRequest(agent_id="demo-agent"), timeout=5),
            stack.stub.GetTask(Request.GetTaskRequest(task_id="t1"), timeout=5),
            stack.stub.StopTask(Request.StopTaskRequest(task_id="t1"), timeout=5),
            stack.stub.ListTasks(Request.ListTasksRequest(agent_id="demo-agent"), timeout=5),
            drain(stack.stub.StreamEvents(Request.StreamEventsRequest(task_id="t1"), timeout=5)),
        ]
        for call in calls:
            got = await failure(call)
            assert got.code == Code.UNAUTHENTICATED
            assert got.error_info is not None
            assert got.error_info.reason == "MISSING_API_KEY"
        assert (await stack.control.stats())["requests"] == {}

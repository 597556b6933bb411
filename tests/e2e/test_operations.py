"""Operations through the real BridgeServer and the local platform: metrics, shedding, limits, tracing, auth.

Every test runs real TaskService calls over sockets against the local platform (or, where the platform's
request headers must be seen, a recording stand-in) and checks what operators rely on: scraped counters, the
RESOURCE_EXHAUSTED answers with RetryInfo, trace and request ids reaching the platform.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from bridge.config import Settings
from bridge.ops.auth import UnsafeExposureError
from bridge.ops.tracing import Tracing
from bridge.server import BridgeServer
from tests.e2e.harness import API_KEY, Stack, bridge_stack, failure_of
from tests.e2e.recorder import recording_platform
from xpander.bridge.v1 import events_pb2, task_service_pb2, task_service_pb2_grpc

Request = task_service_pb2
SERVICE = "xpander.bridge.v1.TaskService"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
TOKEN = "bridge-token-0123456789abcdef"


async def scrape(stack: Stack) -> Samples:
    """Every sample the bridge's /metrics endpoint serves, keyed by name and labels."""
    port = stack.bridge.operations.metrics_port
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    response.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def calls(samples: Samples, method: str, code: str) -> float:
    return value(samples, "bridge_grpc_requests_total", service=SERVICE, method=method, code=code)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    """Wait until `check()` holds (for counters another task updates)."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 - polling a counter, not waiting for an event
            await asyncio.sleep(0.01)


async def test_scraped_metrics_count_a_scripted_session() -> None:
    async with bridge_stack(metrics_listen="127.0.0.1:0") as stack:
        done = (await stack.create("#delay=0.002")).task
        running = (await stack.create("runs until stopped #never")).task
        await stack.stub.GetTask(Request.GetTaskRequest(task_id=done.id), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stack.stub.GetTask(Request.GetTaskRequest(task_id="no-such-task"), timeout=5)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        await stack.stub.ListTasks(Request.ListTasksRequest(agent_id="demo-agent"), timeout=5)
        whole = await stack.stream(done.id)
        await stack.control.fault("task_events", drop_after_events=2)
        reconnected = await stack.stream(done.id)
        assert [m.event.sequence for m in reconnected] == [m.event.sequence for m in whole]

        held = stack.stub.StreamEvents(Request.StreamEventsRequest(task_id=running.id), timeout=10)
        first = await held.read()
        assert isinstance(first, Request.StreamEventsResponse)
        while_open = await scrape(stack)
        held.cancel()

        async def stream_closed() -> bool:
            samples = await scrape(stack)
            return value(samples, "bridge_grpc_open_streams", service=SERVICE, method="StreamEvents") == 0

        await eventually(stream_closed)
        await stack.stub.StopTask(Request.StopTaskRequest(task_id=running.id), timeout=5)
        samples = await scrape(stack)
        platform_counts = (await stack.control.stats())["requests"]

    assert value(while_open, "bridge_grpc_open_streams", service=SERVICE, method="StreamEvents") == 1
    # Per RPC and status code.
    assert calls(samples, "CreateTask", "OK") == 2
    assert calls(samples, "GetTask", "OK") == 1
    assert calls(samples, "GetTask", "NOT_FOUND") == 1
    assert calls(samples, "ListTasks", "OK") == 1
    assert calls(samples, "StopTask", "OK") == 1
    assert calls(samples, "StreamEvents", "OK") == 2
    assert calls(samples, "StreamEvents", "CANCELLED") == 1
    # The latency histogram observed every call, and the in-flight gauge is back to zero.
    duration = "bridge_grpc_request_duration_seconds_count"
    assert value(samples, duration, service=SERVICE, method="GetTask") == 2
    assert value(samples, duration, service=SERVICE, method="StreamEvents") == 3
    assert (
        value(
            samples,
            "bridge_grpc_request_duration_seconds_bucket",
            service=SERVICE,
            method="GetTask",
            le="+Inf",
        )
        == 2
    )
    assert value(samples, "bridge_grpc_calls_in_flight") == 0
    # Events forwarded, by type: every event of the two finished streams, plus what the held stream had sent
    # (at least the one read; the bridge may have sent more before the cancel reached it).
    finished = [m.event for m in [*whole, *reconnected]]
    for event_type in {event.type for event in finished}:
        name = events_pb2.TaskEventType.Name(event_type).removeprefix("TASK_EVENT_TYPE_").lower()
        expected = sum(1 for event in finished if event.type == event_type)
        assert value(samples, "bridge_events_forwarded_total", type=name) >= expected, name
    assert value(samples, "bridge_events_forwarded_total", type="task_finished") == 2
    total = sum(count for (name, _), count in samples.items() if name == "bridge_events_forwarded_total")
    assert total >= len(finished) + 1
    # Upstream requests by route and status are exactly what the platform answered.
    observed: dict[str, dict[str, int]] = {}
    for (name, labels), count in samples.items():
        if name == "bridge_upstream_requests_total" and count:
            label = dict(labels)
            observed.setdefault(label["route"], {})[label["status"]] = int(count)
    assert observed == platform_counts
    assert observed["get_task"]["404"] == 1
    assert value(samples, "bridge_upstream_request_duration_seconds_count", route="create_task") == 2
    # One drop, one reconnection.
    assert value(samples, "bridge_upstream_reconnects_total", route="task_events") == 1


async def test_calls_and_streams_beyond_the_limits_are_shed_with_retry_info() -> None:
    async with bridge_stack(
        metrics_listen="127.0.0.1:0", max_concurrent_calls=2, max_open_streams=1, shed_retry_after=0.5
    ) as stack:
        limits = stack.bridge.operations.limits
        task_id = (await stack.create("runs until stopped #never")).task.id
        await stack.control.fault("get_task", latency=0.3, times=2)
        slow = [
            asyncio.ensure_future(stack.stub.GetTask(Request.GetTaskRequest(task_id=task_id), timeout=5))
            for _ in range(2)
        ]

        async def both_in_flight() -> bool:
            return limits.calls_in_flight == 2

        await eventually(both_in_flight)
        with pytest.raises(grpc.aio.AioRpcError) as shed_call:
            await stack.stub.GetTask(Request.GetTaskRequest(task_id=task_id), timeout=5)
        for call in slow:
            assert (await call).task.id == task_id

        held = stack.stub.StreamEvents(Request.StreamEventsRequest(task_id=task_id), timeout=10)
        await held.read()
        refused = stack.stub.StreamEvents(Request.StreamEventsRequest(task_id=task_id), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as shed_stream:
            await refused.read()
        held.cancel()

        async def stream_closed() -> bool:
            return limits.open_streams == 0

        await eventually(stream_closed)
        again = stack.stub.StreamEvents(Request.StreamEventsRequest(task_id=task_id), timeout=10)
        assert isinstance(await again.read(), Request.StreamEventsResponse)
        again.cancel()
        samples = await scrape(stack)
        upstream_gets = await stack.control.requests("get_task")
        upstream_streams = await stack.control.requests("task_events")

    for error, limit in ((shed_call.value, "concurrent_calls"), (shed_stream.value, "open_streams")):
        failure = failure_of(error)
        assert failure.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert failure.retry_info is not None
        assert failure.retry_info.retry_delay.ToMilliseconds() == 500
        assert failure.error_info is not None
        assert failure.error_info.reason == "BRIDGE_OVERLOADED"
        assert failure.error_info.metadata["limit"] == limit
    shed = "bridge_requests_shed_total"
    assert value(samples, shed, service=SERVICE, method="GetTask", limit="concurrent_calls") == 1
    assert value(samples, shed, service=SERVICE, method="StreamEvents", limit="open_streams") == 1
    # Shed calls never reached the platform: two slow reads, and one event stream per accepted stream.
    assert upstream_gets == {"200": 2}
    assert upstream_streams == {"200": 2}


async def test_oversized_prompts_and_schemas_never_reach_the_platform_and_gzip_is_accepted() -> None:
    schema = struct_pb2.Struct()
    schema.update({"type": "object", "properties": {"answer": {"type": "string", "description": "x" * 80}}})
    async with bridge_stack(max_prompt_bytes=16, max_schema_bytes=64, response_compression="gzip") as stack:
        ok = await stack.stub.CreateTask(
            Request.CreateTaskRequest(agent_id="demo-agent", prompt="short"),
            compression=grpc.Compression.Gzip,
            timeout=5,
        )
        assert ok.task.id
        with pytest.raises(grpc.aio.AioRpcError) as too_big:
            await stack.create("x" * 17, output_schema=schema)
        created = await stack.control.requests("create_task")
    failure = failure_of(too_big.value)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.fields == ["prompt", "output_schema"]
    assert created == {"200": 1}


async def test_an_incoming_traceparent_and_request_id_reach_the_platform() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace_id, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    async with recording_platform() as platform:
        settings = Settings(
            listen="127.0.0.1:0",
            base_url=platform.url,
            api_key=SecretStr(API_KEY),
            organization_id="recorded-org",
        )
        async with (
            BridgeServer(settings, tracing=Tracing(provider)) as bridge,
            grpc.aio.insecure_channel(bridge.address) as channel,
        ):
            stub = task_service_pb2_grpc.TaskServiceStub(channel)
            metadata = (("traceparent", f"00-{trace_id}-{caller_span}-01"), ("x-request-id", "req-42"))
            answer = await stub.GetTask(Request.GetTaskRequest(task_id="t-traced"), metadata=metadata)
            assert answer.task.agent_id == "recorded-agent"
            await stub.GetTask(Request.GetTaskRequest(task_id="t-untraced"))
        traced, untraced = platform.headers

    spans = exporter.get_finished_spans()
    server = next(s for s in spans if s.kind == SpanKind.SERVER and s.context.trace_id == int(trace_id, 16))
    client = next(s for s in spans if s.kind == SpanKind.CLIENT and s.context.trace_id == int(trace_id, 16))
    assert server.name == f"{SERVICE}/GetTask"
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == caller_span
    assert client.parent is not None
    assert client.parent.span_id == server.context.span_id
    assert client.name == "GET get_task"
    assert client.attributes is not None
    assert client.attributes["http.response.status_code"] == 200
    # The platform saw the same trace, as a child of the bridge's client span, and the caller's request id.
    version, sent_trace, sent_parent, flags = traced["traceparent"].split("-")
    assert (version, sent_trace, flags) == ("00", trace_id, "01")
    assert sent_parent == format(client.context.span_id, "016x")
    assert traced["x-request-id"] == "req-42"
    # Without them, a new trace starts and the bridge makes up a request id.
    assert untraced["traceparent"].split("-")[1] != trace_id
    assert len(untraced["x-request-id"]) == 32


async def test_with_bridge_tokens_callers_without_their_own_key_need_one() -> None:
    async with bridge_stack(bridge_tokens=f"ci:{TOKEN}") as stack:
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await stack.create()
        failure = failure_of(anonymous.value)
        assert failure.code == grpc.StatusCode.UNAUTHENTICATED
        assert failure.error_info is not None
        assert failure.error_info.reason == "BRIDGE_CREDENTIALS_REQUIRED"
        created = await stack.stub.CreateTask(
            Request.CreateTaskRequest(agent_id="demo-agent", prompt="hi"),
            metadata=(("x-bridge-token", TOKEN),),
            timeout=5,
        )
        own_key = await stack.stub.GetTask(
            Request.GetTaskRequest(task_id=created.task.id), metadata=(("x-api-key", "callers-own-key"),)
        )
        assert own_key.task.id == created.task.id
        assert await stack.control.requests("create_task") == {"200": 1}


async def test_the_bridge_refuses_to_lend_its_key_on_an_open_address() -> None:
    refused = BridgeServer(
        Settings(listen="0.0.0.0:0", api_key=SecretStr(API_KEY), base_url="http://127.0.0.1:9")
    )
    with pytest.raises(UnsafeExposureError, match="--allow-unauthenticated"):
        await refused.start()
    allowed = Settings(listen="0.0.0.0:0", api_key=SecretStr(API_KEY), allow_unauthenticated=True)
    async with BridgeServer(allowed) as bridge:
        assert bridge.port > 0


async def test_upstream_calls_streams_and_reconnects_are_counted() -> None:
    async with bridge_stack(metrics_listen="127.0.0.1:0") as stack:
        task_id = (await stack.create("#delay=0.002")).task.id
        await stack.control.fault("task_events", drop_after_events=2)
        events = await stack.stream(task_id)
        assert events[-1].event.type == events_pb2.TASK_EVENT_TYPE_TASK_FINISHED
        assert [m.event.sequence for m in events] == list(range(1, len(events) + 1))
        samples = await scrape(stack)
    assert value(samples, "bridge_upstream_requests_total", route="create_task", status="200") == 1
    assert value(samples, "bridge_upstream_requests_total", route="task_events", status="200") == 2
    assert value(samples, "bridge_upstream_reconnects_total", route="task_events") == 1


async def test_the_platform_is_reached_through_the_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    async with recording_platform() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        settings = Settings(
            listen="127.0.0.1:0",
            base_url="http://platform.invalid",
            api_key=SecretStr(API_KEY),
        )
        async with (
            BridgeServer(settings) as bridge,
            grpc.aio.insecure_channel(bridge.address) as channel,
        ):
            stub = task_service_pb2_grpc.TaskServiceStub(channel)
            answer = await stub.GetTask(Request.GetTaskRequest(task_id="t-proxied"), timeout=5)
        monkeypatch.setenv("NO_PROXY", "platform.invalid")
        async with (
            BridgeServer(settings) as bridge,
            grpc.aio.insecure_channel(bridge.address) as channel,
        ):
            stub = task_service_pb2_grpc.TaskServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as direct:
                await stub.GetTask(Request.GetTaskRequest(task_id="t-direct"), timeout=5)
    assert answer.task.id == "t-proxied"
    (seen,) = proxy.headers
    assert seen["host"] == "platform.invalid"
    # Exempted by NO_PROXY, the bridge went straight to a host that does not exist.
    assert failure_of(direct.value).code == grpc.StatusCode.UNAVAILABLE

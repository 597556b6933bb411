"""Tracing: an incoming `traceparent` continues through the RPC's span into the upstream HTTP request."""

from __future__ import annotations

import grpc
import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from bridge.ops.calls import OpsInterceptor
from bridge.ops.logs import AccessLog
from bridge.ops.runtime import Operations
from bridge.ops.settings import OpsSettings
from bridge.ops.tracing import ServerSpans, Tracing, tracing_from_settings
from bridge.ops.upstream import upstream_transport
from tests.ops.support import FixedTaskService, start_server, start_upstream, stub
from xpander.bridge.v1 import task_service_pb2

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"


def in_memory_tracing() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider), exporter


async def test_incoming_traceparent_continues_into_the_upstream_request() -> None:
    tracing, exporter = in_memory_tracing()
    upstream = await start_upstream()
    async with httpx.AsyncClient(
        base_url=upstream.url, transport=upstream_transport(tracing=tracing)
    ) as client:
        served = await start_server(
            interceptors=[tracing.interceptor()], service=FixedTaskService(upstream=client)
        )
        try:
            async with grpc.aio.insecure_channel(served.address) as channel:
                await stub(channel).GetTask(
                    task_service_pb2.GetTaskRequest(task_id="upstream"),
                    metadata=(("traceparent", f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"),),
                )
        finally:
            await served.server.stop(None)
            await upstream.runner.cleanup()

    spans = {span.kind: span for span in exporter.get_finished_spans()}
    server, client_span = spans[SpanKind.SERVER], spans[SpanKind.CLIENT]
    assert server.name == "xpander.bridge.v1.TaskService/GetTask"
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == CALLER_SPAN_ID
    assert server.attributes is not None
    assert server.attributes["rpc.grpc.status_code"] == 0
    assert client_span.parent is not None
    assert client_span.parent.span_id == server.context.span_id
    assert client_span.name == "GET get_task"
    assert client_span.attributes is not None
    assert client_span.attributes["http.response.status_code"] == 200

    (headers,) = upstream.headers
    version, trace_id, parent_id, flags = headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    assert parent_id == format(client_span.context.span_id, "016x")


async def test_without_traceparent_a_new_trace_starts_and_server_faults_mark_the_span() -> None:
    tracing, exporter = in_memory_tracing()
    served = await start_server(interceptors=[tracing.interceptor()])
    try:
        async with grpc.aio.insecure_channel(served.address) as channel:
            tasks = stub(channel)
            await tasks.GetTask(task_service_pb2.GetTaskRequest(task_id="t-1"))
            events = [
                e async for e in tasks.StreamEvents(task_service_pb2.StreamEventsRequest(task_id="t-1"))
            ]
            assert events
    finally:
        await served.server.stop(None)
    unary, stream = exporter.get_finished_spans()
    assert unary.parent is None
    assert unary.status.status_code == StatusCode.UNSET
    assert stream.name == "xpander.bridge.v1.TaskService/StreamEvents"
    assert unary.context.trace_id != stream.context.trace_id


def stages_of(ops: Operations) -> list[type]:
    (interceptor,) = ops.interceptors()
    assert isinstance(interceptor, OpsInterceptor)
    return [type(stage) for stage in interceptor.stages]


def test_tracing_off_installs_nothing() -> None:
    settings = OpsSettings()
    assert tracing_from_settings(settings) is None
    ops = Operations(settings, default_key_configured=False)
    assert ServerSpans not in stages_of(ops)


def test_tracing_on_opens_the_span_right_after_the_request_id() -> None:
    ops = Operations(OpsSettings(tracing="console"), default_key_configured=False)
    try:
        assert stages_of(ops)[:2] == [AccessLog, ServerSpans]
    finally:
        assert ops.tracing is not None
        ops.tracing.shutdown()

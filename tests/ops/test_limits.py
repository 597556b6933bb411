"""Limits: shedding at the concurrency limits, oversized requests, message size; gzip and server options."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2

from bridge.ops.connections import response_compression, server_options
from bridge.ops.limits import Limits, LimitsInterceptor
from bridge.ops.metrics import BridgeMetrics
from bridge.ops.settings import OpsSettings
from tests.ops.support import rich_status, start_server, stub
from xpander.bridge.v1 import task_service_pb2


def retry_delay(error: grpc.aio.AioRpcError) -> float:
    for detail in rich_status(error).details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return float(info.retry_delay.ToNanoseconds() / 1e9)
    raise AssertionError("no RetryInfo")


async def test_calls_beyond_the_limit_are_shed_at_once_and_probes_still_answer() -> None:
    metrics = BridgeMetrics()
    limits = LimitsInterceptor(Limits(max_concurrent_calls=2, retry_after=2.5), metrics=metrics)
    served = await start_server(interceptors=[metrics.interceptor(), limits])
    try:
        async with grpc.aio.insecure_channel(served.address) as channel:
            tasks = stub(channel)
            blocked = [
                asyncio.ensure_future(tasks.GetTask(task_service_pb2.GetTaskRequest(task_id="block")))
                for _ in range(2)
            ]
            for _ in blocked:
                await served.service.entered.get()
            assert limits.calls_in_flight == 2

            with pytest.raises(grpc.aio.AioRpcError) as shed:
                await tasks.GetTask(task_service_pb2.GetTaskRequest(task_id="t-1"), timeout=5)
            assert shed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert retry_delay(shed.value) == 2.5

            check = channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )
            assert (
                await check(health_pb2.HealthCheckRequest())
            ).status == health_pb2.HealthCheckResponse.SERVING

            served.service.release.set()
            for call in blocked:
                assert (await call).task.id == "block"
            assert limits.calls_in_flight == 0
            assert (await tasks.GetTask(task_service_pb2.GetTaskRequest(task_id="t-2"))).task.id == "t-2"
    finally:
        await served.server.stop(None)
    exposition = metrics.exposition().decode()
    assert (
        'bridge_requests_shed_total{limit="concurrent_calls",method="GetTask",'
        'service="xpander.bridge.v1.TaskService"} 1.0' in exposition
    )


async def test_streams_beyond_the_limit_are_shed() -> None:
    limits = LimitsInterceptor(Limits(max_open_streams=1))
    served = await start_server(interceptors=[limits])
    try:
        async with grpc.aio.insecure_channel(served.address) as channel:
            tasks = stub(channel)
            first = tasks.StreamEvents(task_service_pb2.StreamEventsRequest(task_id="block"))
            await served.service.entered.get()
            assert limits.open_streams == 1
            second = tasks.StreamEvents(task_service_pb2.StreamEventsRequest(task_id="t-2"))
            with pytest.raises(grpc.aio.AioRpcError) as shed:
                await second.read()
            assert shed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert retry_delay(shed.value) == 1.0
            # Unary calls have their own budget.
            assert (await tasks.GetTask(task_service_pb2.GetTaskRequest(task_id="t-3"))).task.id == "t-3"
            first.cancel()
            # Wait for the server to see the cancellation and close the stream before opening another.
            for _ in range(200):
                if limits.open_streams == 0:
                    break
                await asyncio.sleep(0.01)
            assert limits.open_streams == 0
            served.service.release.set()
            assert (
                len(
                    [m async for m in tasks.StreamEvents(task_service_pb2.StreamEventsRequest(task_id="t-4"))]
                )
                == 4
            )
    finally:
        await served.server.stop(None)


async def test_oversized_prompts_and_schemas_are_invalid_arguments() -> None:
    limits = LimitsInterceptor(Limits(max_prompt_bytes=10, max_schema_bytes=40))
    served = await start_server(interceptors=[limits])
    schema = struct_pb2.Struct()
    schema.update({"type": "object", "properties": {"answer": {"type": "string", "description": "x" * 50}}})
    try:
        async with grpc.aio.insecure_channel(served.address) as channel:
            tasks = stub(channel)
            ok = await tasks.CreateTask(task_service_pb2.CreateTaskRequest(agent_id="a", prompt="héllo"))
            assert ok.task.id == "task-new"
            with pytest.raises(grpc.aio.AioRpcError) as too_big:
                await tasks.CreateTask(
                    task_service_pb2.CreateTaskRequest(agent_id="a", prompt="ééééééé", output_schema=schema)
                )
    finally:
        await served.server.stop(None)
    assert too_big.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad_request = error_details_pb2.BadRequest()
    assert any(detail.Unpack(bad_request) for detail in rich_status(too_big.value).details)
    assert [v.field for v in bad_request.field_violations] == ["prompt", "output_schema"]
    assert "14 bytes" in bad_request.field_violations[0].description


async def test_messages_beyond_the_receive_limit_are_refused_and_gzip_requests_accepted() -> None:
    settings = OpsSettings(max_receive_message_bytes=2048, response_compression="gzip")
    served = await start_server(options=server_options(settings), compression=response_compression(settings))
    try:
        async with grpc.aio.insecure_channel(served.address) as channel:
            tasks = stub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as too_big:
                await tasks.CreateTask(task_service_pb2.CreateTaskRequest(agent_id="a", prompt="x" * 4096))
            assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            compressed = await tasks.CreateTask(
                task_service_pb2.CreateTaskRequest(agent_id="a", prompt="y" * 1000),
                compression=grpc.Compression.Gzip,
            )
            assert compressed.task.id == "task-new"
    finally:
        await served.server.stop(None)


def test_server_options_carry_keepalive_age_and_port_sharing() -> None:
    options = dict(
        server_options(
            OpsSettings(
                keepalive_time=30,
                max_connection_age=1800,
                max_connection_age_grace=300,
                max_connection_idle=600,
                workers=2,
            )
        )
    )
    assert options["grpc.keepalive_time_ms"] == 30_000
    assert options["grpc.keepalive_timeout_ms"] == 20_000
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.http2.min_recv_ping_interval_without_data_ms"] == 10_000
    assert options["grpc.max_connection_age_ms"] == 1_800_000
    assert options["grpc.max_connection_age_grace_ms"] == 300_000
    assert options["grpc.max_connection_idle_ms"] == 600_000
    assert options["grpc.so_reuseport"] == 1
    single = dict(server_options(OpsSettings()))
    assert single["grpc.so_reuseport"] == 0
    assert "grpc.max_connection_age_ms" not in single

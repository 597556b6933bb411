"""The standard services and the shutdown: health checking, server reflection (v1 and v1alpha), draining."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from bridge.servicer import SERVICE_NAME
from tests.e2e.harness import Stack, failure_of
from xpander.bridge.v1 import events_pb2, task_service_pb2

Serving = health_pb2.HealthCheckResponse
REFLECTION_V1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


async def test_health_is_serving_overall_and_for_task_service(stack: Stack) -> None:
    health: Any = health_pb2_grpc.HealthStub(stack.channel)  # the typeshed stub lacks the methods
    for service in ("", SERVICE_NAME):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert answer.status == Serving.SERVING
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def reflect(
    stack: Stack, request: reflection_pb2.ServerReflectionRequest, *, v1: bool
) -> reflection_pb2.ServerReflectionResponse:
    """One reflection round trip, over v1 or v1alpha (their messages are the same on the wire)."""
    if v1:
        method = stack.channel.stream_stream(
            REFLECTION_V1,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        call = method(iter([request]), timeout=5)
    else:
        channel: Any = stack.channel  # the typeshed stub of ServerReflectionStub takes sync channels only
        stub: Any = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo(iter([request]), timeout=5)
    responses = [response async for response in call]
    assert len(responses) == 1
    response: reflection_pb2.ServerReflectionResponse = responses[0]
    return response


@pytest.mark.parametrize("v1", [True, False], ids=["v1", "v1alpha"])
async def test_reflection_lists_the_services(stack: Stack, v1: bool) -> None:
    response = await reflect(stack, reflection_pb2.ServerReflectionRequest(list_services=""), v1=v1)
    names = {service.name for service in response.list_services_response.service}
    assert {SERVICE_NAME, "grpc.health.v1.Health"} <= names
    assert {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} <= names


@pytest.mark.parametrize("v1", [True, False], ids=["v1", "v1alpha"])
async def test_reflection_describes_task_service_and_itself(stack: Stack, v1: bool) -> None:
    for symbol, file_name in (
        (SERVICE_NAME, "xpander/bridge/v1/task_service.proto"),
        ("grpc.reflection.v1.ServerReflection", "grpc/reflection/v1/reflection.proto"),
    ):
        response = await reflect(
            stack, reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol), v1=v1
        )
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(raw)
            for raw in response.file_descriptor_response.file_descriptor_proto
        ]
        assert files[0].name == file_name


async def test_shutdown_drains_streams_finishes_unary_calls_and_stops_serving(stack: Stack) -> None:
    health: Any = health_pb2_grpc.HealthStub(stack.channel)  # the typeshed stub lacks the methods
    watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    assert (await anext(aiter(watch))).status == Serving.SERVING

    task_id = (await stack.create("runs until stopped #never")).task.id
    stream = stack.stub.StreamEvents(task_service_pb2.StreamEventsRequest(task_id=task_id), timeout=10)
    received: list[events_pb2.TaskEvent] = []
    async for message in stream:
        received.append(message.event)
        if message.event.type == events_pb2.TASK_EVENT_TYPE_TOOL_CALL_RESULT:
            break
    await stack.control.fault("get_task", latency=0.4)
    in_flight = asyncio.ensure_future(
        stack.stub.GetTask(task_service_pb2.GetTaskRequest(task_id=task_id), timeout=10)
    )
    async with asyncio.timeout(5):  # wait until the unary call is inside the bridge, waiting on the platform
        while stack.bridge.operations.limits.calls_in_flight < 1:  # noqa: ASYNC110
            await asyncio.sleep(0.005)

    stopping = asyncio.ensure_future(stack.bridge.stop())

    assert (await anext(aiter(watch))).status == Serving.NOT_SERVING
    watch.cancel()

    async def rest_of_stream() -> None:
        async for message in stream:
            received.append(message.event)

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await rest_of_stream()
    ended = failure_of(error.value)
    assert ended.code == grpc.StatusCode.UNAVAILABLE
    assert ended.error_info is not None
    assert ended.error_info.reason == "BRIDGE_SHUTTING_DOWN"
    assert ended.error_info.metadata["last_sequence"] == str(received[-1].sequence)
    assert ended.retry_info is not None
    assert f"after_sequence={received[-1].sequence}" in ended.message

    assert (await in_flight).task.id == task_id  # finished within the grace period
    await asyncio.wait_for(stopping, 5)
    await stack.control.wait_open_streams(0)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stack.stub.GetTask(task_service_pb2.GetTaskRequest(task_id=task_id), timeout=2)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

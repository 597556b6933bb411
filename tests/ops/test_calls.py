"""The ops interceptor: stages bound once per method, run in order around each call, refusals and streams."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from bridge.errors import InvalidArgument
from bridge.ops.calls import Call, CallStage, MethodStage, OpsInterceptor, is_open_method
from tests.ops.support import start_server, stub
from xpander.bridge.v1 import task_service_pb2

Record = list[tuple[str, ...]]


class Recording(CallStage):
    """A stage writing down what it is asked to do; refuses GetTask calls for `refuse_task`."""

    def __init__(self, name: str, record: Record, *, refuse_task: str | None = None) -> None:
        self.name = name
        self.record = record
        self.refuse_task = refuse_task

    def bind(self, method: str, *, streaming: bool) -> MethodStage | None:
        if is_open_method(method):
            return None
        self.record.append(("bind", self.name, method.rpartition("/")[2], str(streaming)))
        return _RecordingMethod(self)


class _RecordingMethod(MethodStage):
    def __init__(self, stage: Recording) -> None:
        self.stage = stage

    def enter(self, call: Call) -> object:
        self.stage.record.append(("enter", self.stage.name))
        if self.stage.refuse_task is not None and call.request.task_id == self.stage.refuse_task:
            raise InvalidArgument(f"{self.stage.name} refuses {call.request.task_id}")
        return f"state of {self.stage.name}"

    def exit(self, call: Call, state: object, code: grpc.StatusCode) -> None:
        self.stage.record.append(("exit", self.stage.name, code.name, str(state), str(call.sent)))

    def message(self, message: Any) -> None:
        self.stage.record.append(("message", self.stage.name, str(message.event.sequence)))


async def test_stages_are_bound_once_per_method_and_run_in_order_around_each_call() -> None:
    record: Record = []
    interceptor = OpsInterceptor([Recording("outer", record), Recording("inner", record, refuse_task="no")])
    served = await start_server(interceptors=[interceptor])
    try:
        async with grpc.aio.insecure_channel(served.address) as channel:
            tasks = stub(channel)
            for task_id in ("t-1", "t-2"):
                await tasks.GetTask(task_service_pb2.GetTaskRequest(task_id=task_id))
            binds = [entry for entry in record if entry[0] == "bind"]
            assert binds == [("bind", "outer", "GetTask", "False"), ("bind", "inner", "GetTask", "False")]
            one_call = [
                ("enter", "outer"),
                ("enter", "inner"),
                ("exit", "inner", "OK", "state of inner", "0"),
                ("exit", "outer", "OK", "state of outer", "0"),
            ]
            assert record[2:] == one_call * 2

            record.clear()
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await tasks.GetTask(task_service_pb2.GetTaskRequest(task_id="no"))
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert refused.value.details() == "inner refuses no"
            # The refusing stage was not entered, so only the outer one leaves, with the refusal's code.
            assert record == [
                ("enter", "outer"),
                ("enter", "inner"),
                ("exit", "outer", "INVALID_ARGUMENT", "state of outer", "0"),
            ]

            record.clear()
            events = [e async for e in tasks.StreamEvents(task_service_pb2.StreamEventsRequest(task_id="s"))]
            assert len(events) == 4
            assert record[:2] == [
                ("bind", "outer", "StreamEvents", "True"),
                ("bind", "inner", "StreamEvents", "True"),
            ]
            messages = [entry for entry in record if entry[0] == "message"]
            assert messages == [
                ("message", name, str(n)) for n in (1, 2, 3, 3) for name in ("outer", "inner")
            ]
            assert record[-2:] == [
                ("exit", "inner", "OK", "state of inner", "4"),
                ("exit", "outer", "OK", "state of outer", "4"),
            ]

            # Health is an open method: these stages leave it alone, and it still answers.
            record.clear()
            check = channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )
            assert (
                await check(health_pb2.HealthCheckRequest())
            ).status == health_pb2.HealthCheckResponse.SERVING
            assert record == []
    finally:
        await served.server.stop(None)


async def test_a_stream_cancelled_by_its_caller_ends_cancelled_for_every_stage() -> None:
    record: Record = []
    served = await start_server(interceptors=[OpsInterceptor([Recording("only", record)])])
    try:
        async with grpc.aio.insecure_channel(served.address) as channel:
            stream = stub(channel).StreamEvents(task_service_pb2.StreamEventsRequest(task_id="block"))
            assert await served.service.entered.get() == "block"
            stream.cancel()
            for _ in range(100):
                if record[-1][0] == "exit":
                    break
                await asyncio.sleep(0.02)
    finally:
        await served.server.stop(None)
    assert record[-1] == ("exit", "only", "CANCELLED", "state of only", "0")

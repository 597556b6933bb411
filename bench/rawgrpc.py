"""grpc.aio alone: a TaskService answering from the bridge's own messages, with no upstream at all.

It measures what grpc.aio itself costs on one core, so the bridge's figures can be read against what any
Python gRPC server does here. It sends the bridge's own answers byte for byte (`bench.streams sample`), and
picks a stream's pattern from its task id like the responder. Options (one JSON argument): `messages` (those
answers), `port` and `loop`.
"""

import asyncio
import base64
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from bench.loadloop import run
from xpander.bridge.v1 import events_pb2, task_service_pb2, task_service_pb2_grpc

_Context = grpc.aio.ServicerContext[Any, Any]


class RawTaskService(task_service_pb2_grpc.TaskServiceServicer):
    """CreateTask and StreamEvents from messages decoded once; the other methods stay UNIMPLEMENTED."""

    def __init__(self, dumped: dict[str, Any]) -> None:
        self.created_task = task_service_pb2.CreateTaskResponse.FromString(base64.b64decode(dumped["create"]))
        events = [
            task_service_pb2.StreamEventsResponse.FromString(base64.b64decode(e)) for e in dumped["events"]
        ]
        self.first, self.last = events[0], events[-1]
        self.chunk = next(e for e in events if e.event.type == events_pb2.TASK_EVENT_TYPE_CHUNK)

    async def CreateTask(
        self, request: task_service_pb2.CreateTaskRequest, context: _Context
    ) -> task_service_pb2.CreateTaskResponse:
        return self.created_task

    async def GetTask(self, request: Any, context: _Context) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED)

    StopTask = ListTasks = GetTask

    async def StreamEvents(
        self, request: task_service_pb2.StreamEventsRequest, context: _Context
    ) -> AsyncIterator[task_service_pb2.StreamEventsResponse]:
        kind, *args = request.task_id.split("-")
        yield self.first
        if kind == "idle":
            await asyncio.Event().wait()
        for _ in range(int(args[0]) if kind == "burst" else 0):
            yield self.chunk
        yield self.last


async def _serve(service: RawTaskService, port: int) -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    task_service_pb2_grpc.add_TaskServiceServicer_to_server(service, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop(0.5)


if __name__ == "__main__":
    options = json.loads(sys.argv[1])
    messages = json.loads(Path(options["messages"]).read_text())
    run(_serve(RawTaskService(messages), options["port"]), options["loop"])

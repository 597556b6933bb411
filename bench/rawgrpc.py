"""The grpc.aio ceiling: a TaskService that answers from prebuilt messages, with no upstream at all.

It measures what grpc.aio itself costs on one core, so the bridge's figures can be read as a share of what
any Python gRPC server could do here. CreateTask returns one prebuilt task; StreamEvents picks its pattern
from the task id like the responder (`burst-<n>-…`: task_created, n chunks, task_finished as fast as
grpc.aio sends them; `idle-…`: task_created, then nothing until the caller cancels).

`--swallow-cancel` makes StreamEvents return normally when the caller cancels instead of letting
`CancelledError` propagate; the levers benchmark uses it to show what that does to memory.

With `--messages` (written by `python -m bench.streams sample --dump`) it sends the very messages the bridge
sent, byte for byte; without, it builds equivalent ones from the capture.

Run: `python -m bench.rawgrpc --replay bench/results/replay.json [--messages M] [--loop uvloop]`; prints
`{"port": N}`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import grpc
from google.protobuf import timestamp_pb2

from bench.loops import LOOPS, LoopKind, run
from xpander.bridge.v1 import events_pb2, task_pb2, task_service_pb2, task_service_pb2_grpc

__all__ = ["RawTaskService", "build_messages", "load_messages", "main"]


def _timestamp(text: str) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(datetime.fromisoformat(text.replace("Z", "+00:00")))
    return stamp


def _task(data: dict[str, Any]) -> task_pb2.Task:
    try:
        from bridge.convert.task import task_from_platform
    except ImportError:
        task = task_pb2.Task(
            id=data["id"], agent_id=data["agent_id"], organization_id=data["organization_id"]
        )
        task.input.text = data["input"].get("text") or ""
        task.created_at.CopyFrom(_timestamp(data["created_at"]))
        return task
    return task_from_platform(data)


def load_messages(
    path: Path,
) -> tuple[task_service_pb2.CreateTaskResponse, list[events_pb2.TaskEvent]]:
    """The bridge's own CreateTask response and its created, first chunk and finished events."""
    dumped = json.loads(path.read_text())
    response = task_service_pb2.CreateTaskResponse.FromString(base64.b64decode(dumped["create"]))
    events = [
        task_service_pb2.StreamEventsResponse.FromString(base64.b64decode(item)).event
        for item in dumped["events"]
    ]
    chunk = next(event for event in events if event.type == events_pb2.TASK_EVENT_TYPE_CHUNK)
    return response, [events[0], chunk, events[-1]]


def build_messages(
    captured: dict[str, Any],
) -> tuple[task_service_pb2.CreateTaskResponse, list[events_pb2.TaskEvent]]:
    """The CreateTask response and the event templates (created, chunk, finished) the bridge would send."""
    events = {event["type"]: event for event in captured["events"]}
    created, chunk, finished = events["task_created"], events["chunk"], events["task_finished"]
    response = task_service_pb2.CreateTaskResponse(task=_task(captured["create_task"]))
    templates = []
    for event, kind in (
        (created, events_pb2.TASK_EVENT_TYPE_TASK_CREATED),
        (chunk, events_pb2.TASK_EVENT_TYPE_CHUNK),
        (finished, events_pb2.TASK_EVENT_TYPE_TASK_FINISHED),
    ):
        message = events_pb2.TaskEvent(
            type=kind,
            type_name=event["type"],
            task_id=event["task_id"],
            organization_id=event["organization_id"],
            time=_timestamp(event["time"]),
        )
        if kind == events_pb2.TASK_EVENT_TYPE_CHUNK:
            message.chunk = "chunk 000000 "
        else:
            message.task.CopyFrom(_task(event["data"]))
        templates.append(message)
    return response, templates


class RawTaskService(task_service_pb2_grpc.TaskServiceServicer):
    """Answers from messages built once at start-up (every chunk is the same message)."""

    def __init__(
        self,
        response: task_service_pb2.CreateTaskResponse,
        templates: list[events_pb2.TaskEvent],
        swallow_cancel: bool,
    ) -> None:
        self.response = response
        self.created, self.chunk, self.finished = (
            task_service_pb2.StreamEventsResponse(event=template) for template in templates
        )
        self.swallow_cancel = swallow_cancel

    async def CreateTask(
        self,
        request: task_service_pb2.CreateTaskRequest,
        context: grpc.aio.ServicerContext[
            task_service_pb2.CreateTaskRequest, task_service_pb2.CreateTaskResponse
        ],
    ) -> task_service_pb2.CreateTaskResponse:
        return self.response

    async def _unimplemented(self, context: grpc.aio.ServicerContext[Any, Any]) -> NoReturn:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not part of the ceiling benchmark")

    async def GetTask(
        self,
        request: task_service_pb2.GetTaskRequest,
        context: grpc.aio.ServicerContext[task_service_pb2.GetTaskRequest, task_service_pb2.GetTaskResponse],
    ) -> task_service_pb2.GetTaskResponse:
        return await self._unimplemented(context)

    async def StopTask(
        self,
        request: task_service_pb2.StopTaskRequest,
        context: grpc.aio.ServicerContext[
            task_service_pb2.StopTaskRequest, task_service_pb2.StopTaskResponse
        ],
    ) -> task_service_pb2.StopTaskResponse:
        return await self._unimplemented(context)

    async def ListTasks(
        self,
        request: task_service_pb2.ListTasksRequest,
        context: grpc.aio.ServicerContext[
            task_service_pb2.ListTasksRequest, task_service_pb2.ListTasksResponse
        ],
    ) -> task_service_pb2.ListTasksResponse:
        return await self._unimplemented(context)

    async def StreamEvents(
        self,
        request: task_service_pb2.StreamEventsRequest,
        context: grpc.aio.ServicerContext[
            task_service_pb2.StreamEventsRequest, task_service_pb2.StreamEventsResponse
        ],
    ) -> AsyncIterator[task_service_pb2.StreamEventsResponse]:
        kind, *args = request.task_id.split("-")
        try:
            yield self.created
            if kind == "idle":
                await asyncio.Event().wait()
            count = int(args[0]) if kind == "burst" and args and args[0].isdigit() else 0
            chunk = self.chunk
            for _ in range(count):
                yield chunk
            yield self.finished
        except asyncio.CancelledError:
            if not self.swallow_cancel:
                raise


async def serve(service: RawTaskService, port: int) -> None:
    """Serve until SIGTERM/SIGINT; announce the bound port as one JSON line on stdout."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    task_service_pb2_grpc.add_TaskServiceServicer_to_server(service, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(json.dumps({"port": bound}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop(0.5)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bench.rawgrpc`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replay", type=Path, required=True, help="capture written by bench.capture")
    parser.add_argument("--messages", type=Path, help="responses dumped by `bench.streams sample --dump`")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--loop", choices=LOOPS, default="asyncio")
    parser.add_argument("--swallow-cancel", action="store_true")
    args = parser.parse_args(argv)
    if args.messages is not None:
        response, templates = load_messages(args.messages)
    else:
        response, templates = build_messages(json.loads(args.replay.read_text()))
    loop: LoopKind = args.loop
    run(serve(RawTaskService(response, templates, args.swallow_cancel), args.port), loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())

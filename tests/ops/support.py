"""What the ops tests share: a tiny TaskService with fixed answers, a server starter, an upstream stand-in."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
from aiohttp import web
from google.rpc import status_pb2
from grpc_health.v1 import health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from bridge.ops.auth import caller_var
from bridge.ops.upstream import ROUTE_EXTENSION
from xpander.bridge.v1 import events_pb2, task_pb2, task_service_pb2, task_service_pb2_grpc

TASK_SERVICE = "/xpander.bridge.v1.TaskService/"
_LOG = logging.getLogger("tests.ops.service")


class FixedTaskService(task_service_pb2_grpc.TaskServiceServicer):
    """Answers from fixed data; a few task ids script behaviour.

    GetTask: `missing` -> NOT_FOUND, `block` -> waits for `release`, `whoami` -> task id is the caller,
    `pid` -> task id is this process id, `upstream` -> one GET to the upstream stand-in (route `get_task`),
    whose status becomes the task id. StreamEvents yields `events` events then a heartbeat; `block` keeps the
    stream open until `release`. CreateTask logs its request (to prove redaction) and returns a task.
    """

    def __init__(self, *, upstream: httpx.AsyncClient | None = None, events: int = 3) -> None:
        self.upstream = upstream
        self.events = events
        self.release = asyncio.Event()
        self.entered = asyncio.Queue[str]()

    async def GetTask(
        self,
        request: task_service_pb2.GetTaskRequest,
        context: grpc.aio.ServicerContext[task_service_pb2.GetTaskRequest, task_service_pb2.GetTaskResponse],
    ) -> task_service_pb2.GetTaskResponse:
        task_id = request.task_id
        if task_id == "missing":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such task")
        if task_id == "block":
            self.entered.put_nowait(task_id)
            await self.release.wait()
        if task_id == "whoami":
            task_id = str(caller_var.get())
        if task_id == "pid":
            task_id = str(os.getpid())
        if task_id == "upstream":
            assert self.upstream is not None
            response = await self.upstream.get("/tasks/t-1", extensions={ROUTE_EXTENSION: "get_task"})
            task_id = str(response.status_code)
        return task_service_pb2.GetTaskResponse(task=task_pb2.Task(id=task_id, agent_id="agent-1"))

    async def CreateTask(
        self,
        request: task_service_pb2.CreateTaskRequest,
        context: grpc.aio.ServicerContext[
            task_service_pb2.CreateTaskRequest, task_service_pb2.CreateTaskResponse
        ],
    ) -> task_service_pb2.CreateTaskResponse:
        # A careless log line: the whole request and metadata, secrets included, as a leak would look.
        _LOG.info("creating task from %s with metadata %s", request, context.invocation_metadata())
        return task_service_pb2.CreateTaskResponse(
            task=task_pb2.Task(id="task-new", agent_id=request.agent_id)
        )

    async def StopTask(
        self,
        request: task_service_pb2.StopTaskRequest,
        context: grpc.aio.ServicerContext[
            task_service_pb2.StopTaskRequest, task_service_pb2.StopTaskResponse
        ],
    ) -> task_service_pb2.StopTaskResponse:
        return task_service_pb2.StopTaskResponse(task=task_pb2.Task(id=request.task_id))

    async def ListTasks(
        self,
        request: task_service_pb2.ListTasksRequest,
        context: grpc.aio.ServicerContext[
            task_service_pb2.ListTasksRequest, task_service_pb2.ListTasksResponse
        ],
    ) -> task_service_pb2.ListTasksResponse:
        return task_service_pb2.ListTasksResponse(tasks=[task_pb2.Task(id="task-1")], total_size=1)

    async def StreamEvents(
        self,
        request: task_service_pb2.StreamEventsRequest,
        context: grpc.aio.ServicerContext[
            task_service_pb2.StreamEventsRequest, task_service_pb2.StreamEventsResponse
        ],
    ) -> AsyncIterator[task_service_pb2.StreamEventsResponse]:
        if request.task_id == "block":
            self.entered.put_nowait(request.task_id)
            await self.release.wait()
        for sequence in range(1, self.events + 1):
            event_type = (
                events_pb2.TASK_EVENT_TYPE_CHUNK if sequence > 1 else events_pb2.TASK_EVENT_TYPE_TASK_CREATED
            )
            yield task_service_pb2.StreamEventsResponse(
                event=events_pb2.TaskEvent(sequence=sequence, type=event_type, task_id=request.task_id)
            )
        yield task_service_pb2.StreamEventsResponse(
            event=events_pb2.TaskEvent(
                sequence=self.events, type=events_pb2.TASK_EVENT_TYPE_HEARTBEAT, task_id=request.task_id
            )
        )


@dataclass
class Served:
    """A started server and how to reach it."""

    server: grpc.aio.Server
    port: int
    service: FixedTaskService
    health: health_aio.HealthServicer

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


async def start_server(
    *,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    options: Sequence[tuple[str, Any]] = (),
    credentials: grpc.ServerCredentials | None = None,
    service: FixedTaskService | None = None,
    compression: grpc.Compression | None = None,
) -> Served:
    """A grpc.aio server on 127.0.0.1:0 serving `service` (a new FixedTaskService) and health."""
    server = grpc.aio.server(interceptors=list(interceptors), options=list(options), compression=compression)
    service = service or FixedTaskService()
    task_service_pb2_grpc.add_TaskServiceServicer_to_server(service, server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = (
        server.add_secure_port("127.0.0.1:0", credentials)
        if credentials is not None
        else server.add_insecure_port("127.0.0.1:0")
    )
    await server.start()
    return Served(server=server, port=port, service=service, health=health)


@dataclass
class Upstream:
    """An aiohttp stand-in for the platform recording the headers of every request."""

    runner: web.AppRunner
    url: str
    headers: list[dict[str, str]] = field(default_factory=list)


async def start_upstream(status: int = 200) -> Upstream:
    """Serve `GET /tasks/{id}` answering `status`, on 127.0.0.1:0."""
    seen: list[dict[str, str]] = []

    async def get_task(request: web.Request) -> web.Response:
        seen.append({name.lower(): value for name, value in request.headers.items()})
        return web.json_response({"id": request.match_info["task_id"]}, status=status)

    app = web.Application()
    app.router.add_get("/tasks/{task_id}", get_task)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return Upstream(runner=runner, url=f"http://127.0.0.1:{port}", headers=seen)


def stub(channel: grpc.aio.Channel) -> task_service_pb2_grpc.TaskServiceAsyncStub:
    """A TaskService stub on `channel`."""
    return task_service_pb2_grpc.TaskServiceStub(channel)


def rich_status(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The google.rpc.Status a failed call carried in its trailers."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    raise AssertionError("no rich status in the trailers")

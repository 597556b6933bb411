"""TaskService: each RPC reads credentials, converts the request, makes one platform call and converts back.

The servicer holds no translation logic of its own: requests and answers go through `bridge.convert`,
HTTP through `bridge.platform`, paging through `bridge.paging`. Every failure funnels through one place,
`_RpcErrors`, which ends the call with the error's gRPC code, its message and `google.rpc.Status` details.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from types import TracebackType
from typing import Any, Final

import grpc
from grpc_status import rpc_status

from bridge import convert, paging
from bridge.credentials import Credentials, caller_metadata, resolve_credentials
from bridge.errors import (
    BridgeError,
    DeadlineExceeded,
    FieldViolation,
    Internal,
    InvalidArgument,
)
from bridge.platform.client import PlatformClient
from bridge.platform.follow import ReconnectPolicy
from bridge.redaction import add_call_secrets, scrub
from bridge.streaming import Beat, TaskEventStreams
from xpander.bridge.v1 import task_service_pb2, task_service_pb2_grpc

__all__ = ["SERVICE_NAME", "TaskService"]

_log = logging.getLogger(__name__)

SERVICE_NAME: Final = task_service_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name
"""`xpander.bridge.v1.TaskService`."""

_MIN_HEARTBEAT_SECONDS = 0.01
# Failures that point at the platform or the bridge rather than at the caller's request.
_WORTH_A_WARNING = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN})

Context = grpc.aio.ServicerContext[Any, Any]


class TaskService(task_service_pb2_grpc.TaskServiceServicer):
    """The gRPC face of the platform's task API."""

    def __init__(
        self,
        platform: PlatformClient,
        *,
        default_api_key: str | None = None,
        default_organization_id: str | None = None,
        reconnect_policy: ReconnectPolicy | None = None,
        on_stream_reconnect: Callable[[], object] | None = None,
    ) -> None:
        self._platform = platform
        self._default_api_key = default_api_key
        self._default_organization_id = default_organization_id
        self._streams = TaskEventStreams(platform, policy=reconnect_policy, on_reconnect=on_stream_reconnect)

    @property
    def open_streams(self) -> int:
        """Number of StreamEvents calls currently relaying events."""
        return self._streams.open_streams

    def drain(self) -> None:
        """Refuse new streams and end open ones with UNAVAILABLE, so their clients resume elsewhere."""
        self._streams.drain()

    # --- Unary RPCs ---------------------------------------------------------------------------------------

    async def CreateTask(
        self, request: task_service_pb2.CreateTaskRequest, context: Context
    ) -> task_service_pb2.CreateTaskResponse:
        """`POST /agent-execution/{agent_id}`."""
        async with _RpcErrors(context, "create_task"):
            creds = self._credentials(context)
            call = convert.create_task_to_platform(request)
            data = await self._platform.create_task(
                request.agent_id, call.body, call.headers, creds, budget=_budget(context)
            )
            return task_service_pb2.CreateTaskResponse(task=convert.task_from_platform(data))

    async def GetTask(
        self, request: task_service_pb2.GetTaskRequest, context: Context
    ) -> task_service_pb2.GetTaskResponse:
        """`GET /agent-execution/{task_id}/status`."""
        async with _RpcErrors(context, "get_task"):
            creds = self._credentials(context)
            task_id = convert.validate_resource_id("task_id", request.task_id)
            data = await self._platform.get_task(task_id, creds, budget=_budget(context))
            return task_service_pb2.GetTaskResponse(task=convert.task_from_platform(data))

    async def StopTask(
        self, request: task_service_pb2.StopTaskRequest, context: Context
    ) -> task_service_pb2.StopTaskResponse:
        """`DELETE /agent-execution/{task_id}`."""
        async with _RpcErrors(context, "stop_task"):
            creds = self._credentials(context)
            task_id = convert.validate_resource_id("task_id", request.task_id)
            data = await self._platform.stop_task(task_id, creds, budget=_budget(context))
            return task_service_pb2.StopTaskResponse(task=convert.task_from_platform(data))

    async def ListTasks(
        self, request: task_service_pb2.ListTasksRequest, context: Context
    ) -> task_service_pb2.ListTasksResponse:
        """`GET .../executions/history/{agent_id}` or `.../history/user/{user_id}`, paged by the bridge."""
        async with _RpcErrors(context, "list_tasks"):
            creds = self._credentials(context)
            call = convert.list_tasks_to_platform(request)
            cursor = paging.PageRequest.parse(
                page_size=request.page_size,
                page_token=request.page_token,
                fingerprint=paging.filters_fingerprint({"path": call.path, **call.query}),
            )
            items = await self._platform.list_tasks(call.path, call.query, creds, budget=_budget(context))
            page = cursor.page(items)
            return task_service_pb2.ListTasksResponse(
                tasks=[convert.task_from_list_item(item) for item in page.items],
                next_page_token=page.next_page_token,
                total_size=page.total_size,
            )

    # --- Streaming RPC ------------------------------------------------------------------------------------

    async def StreamEvents(
        self, request: task_service_pb2.StreamEventsRequest, context: Context
    ) -> AsyncIterator[task_service_pb2.StreamEventsResponse]:
        """`GET {events_root}/agent-execution/{task_id}/events`, resumed and reconnected by the bridge.

        The stream is opened straight away. The task is read (GetTask) only when the platform refuses the
        stream or closes it before any event, to answer NOT_FOUND or FAILED_PRECONDITION (a task created
        without `events_streaming`) rather than the platform's bare status; either way before any message.
        An unset `after_sequence` starts where the platform starts; 0 asks for every event.
        """
        async with _RpcErrors(context, "task_events"):
            creds = self._credentials(context)
            task_id = convert.validate_resource_id("task_id", request.task_id)
            heartbeat = _heartbeat_seconds(request)
            organization_id = creds.require_organization("StreamEvents")
            events = self._streams.events(
                task_id,
                creds,
                after_sequence=request.after_sequence if request.HasField("after_sequence") else None,
                heartbeat=heartbeat,
                budget=context.time_remaining(),
            )
            async with aclosing(events):
                async for item in events:
                    if isinstance(item, Beat):
                        beat = convert.heartbeat_event(task_id, organization_id, item.sequence)
                        yield task_service_pb2.StreamEventsResponse(event=beat)
                        continue
                    response = task_service_pb2.StreamEventsResponse()
                    convert.event_from_platform(*item, into=response.event)
                    # Nothing of the event is held while the stream waits for the next one.
                    del item
                    yield response
                    del response

    def _credentials(self, context: Context) -> Credentials:
        caller = caller_metadata(context)
        creds = resolve_credentials(
            caller,
            default_api_key=self._default_api_key,
            default_organization_id=self._default_organization_id,
        )
        # The platform may echo the key it got in its error text; `_RpcErrors` scrubs these out.
        add_call_secrets((*caller.secrets, creds.api_key))
        return creds


def _budget(context: Context) -> float | None:
    """Seconds left before the call's deadline (None without one); DEADLINE_EXCEEDED when none are left."""
    remaining = context.time_remaining()
    if remaining is None:
        return None
    if remaining <= 0:
        raise DeadlineExceeded("the call's deadline passed before the platform was called", reason="DEADLINE")
    return float(remaining)


def _heartbeat_seconds(request: task_service_pb2.StreamEventsRequest) -> float | None:
    if not request.HasField("heartbeat_interval"):
        return None
    seconds = request.heartbeat_interval.ToNanoseconds() / 1e9
    if seconds == 0:
        return None
    if seconds < _MIN_HEARTBEAT_SECONDS:
        problem = f"must be 0 (no heartbeats) or at least {_MIN_HEARTBEAT_SECONDS * 1000:.0f}ms"
        raise InvalidArgument(
            f"invalid request: heartbeat_interval {problem}",
            field_violations=[FieldViolation("heartbeat_interval", problem)],
        )
    return seconds


class _RpcErrors:
    """The one error funnel of every RPC, unary or streaming: a raised error ends the call with its status.

    BridgeErrors keep their code and details; a platform answer the conversions cannot read becomes INTERNAL
    naming the route; anything else is a bug, logged with its traceback and reported as a bare INTERNAL.
    Every secret the bridge knows is scrubbed from the message and ErrorInfo metadata before either is
    logged or sent: platform error text may echo the key it was given.
    Cancellation passes through untouched: a cancelled call must not be answered.
    """

    __slots__ = ("_context", "_route")

    def __init__(self, context: Context, route: str) -> None:
        self._context = context
        self._route = route

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, grpc.aio.AbortError):
            return
        error = self._bridge_error(exc).redacted(scrub)
        _log.log(
            logging.WARNING if error.code in _WORTH_A_WARNING else logging.DEBUG,
            "%s call failed: %s %s",
            self._route,
            error.code.name,
            error.message,
        )
        status = rpc_status.to_status(error.to_rpc_status())
        await self._context.abort(status.code, status.details, status.trailing_metadata)

    def _bridge_error(self, exc: Exception) -> BridgeError:
        if isinstance(exc, BridgeError):
            return exc
        if isinstance(exc, convert.PayloadError):
            return Internal(
                f"the platform answered {self._route} with a body the bridge cannot read: {exc}",
                reason="UPSTREAM_MALFORMED_RESPONSE",
                metadata={"route": self._route},
            )
        _log.error("unexpected error in %s", self._route, exc_info=exc)
        return Internal(
            "internal error in the bridge", reason="BRIDGE_INTERNAL", metadata={"route": self._route}
        )

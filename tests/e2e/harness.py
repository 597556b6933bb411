"""A running bridge stack for end-to-end tests: local platform + bridge + gRPC client, all on real sockets.

`bridge_stack()` starts the local platform on a free port, the bridge on a free port pointed at it, and opens
a grpc.aio channel; `Stack` hands out the stub, the platform's test controls (faults, stats) and helpers
to read gRPC error details. Other test packages import from here (the fixtures in `conftest.py` wrap it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from bridge.config import Settings
from bridge.localplatform import LocalPlatform
from bridge.server import BridgeServer
from xpander.bridge.v1 import task_service_pb2, task_service_pb2_grpc

__all__ = [
    "API_KEY",
    "PlatformControl",
    "RpcFailure",
    "Stack",
    "bridge_settings",
    "bridge_stack",
    "failure_of",
]

API_KEY = "e2e-test-key"
"""The key the stack's bridge is configured with (the local platform accepts any key)."""


class PlatformControl:
    """The local platform's test controls: inject and clear faults, read and reset request counts."""

    def __init__(self, url: str) -> None:
        self._http = httpx.AsyncClient(base_url=url, timeout=10.0)

    async def fault(self, route: str, **rule: Any) -> None:
        """Activate one fault rule on `route` (see bridge.localplatform.faults for the keys)."""
        response = await self._http.post("/_local/faults", json={"route": route, **rule})
        response.raise_for_status()

    async def clear_faults(self) -> None:
        """Drop every fault rule."""
        (await self._http.delete("/_local/faults")).raise_for_status()

    async def stats(self) -> dict[str, Any]:
        """The `/_local/stats` document."""
        response = await self._http.get("/_local/stats")
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    async def requests(self, route: str) -> dict[str, int]:
        """Answered requests of `route`, by HTTP status (as strings)."""
        counts: dict[str, int] = (await self.stats())["requests"].get(route, {})
        return counts

    async def reset_stats(self) -> None:
        """Zero the request counts."""
        (await self._http.delete("/_local/stats")).raise_for_status()

    async def wait_open_streams(self, expected: int, within: float = 5.0) -> None:
        """Wait until the platform counts exactly `expected` open event streams (polled: another server)."""
        async with asyncio.timeout(within):
            while (await self.stats())["open_event_streams"] != expected:  # noqa: ASYNC110
                await asyncio.sleep(0.01)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()


@dataclass
class Stack:
    """A running local platform, a bridge pointed at it, and a client channel to the bridge."""

    platform: LocalPlatform
    bridge: BridgeServer
    channel: grpc.aio.Channel
    stub: task_service_pb2_grpc.TaskServiceAsyncStub
    control: PlatformControl

    async def create(
        self,
        prompt: str = "count these words",
        *,
        agent_id: str = "demo-agent",
        streaming: bool = True,
        **fields: Any,
    ) -> task_service_pb2.CreateTaskResponse:
        """CreateTask on `agent_id` with `prompt` (events streaming on unless said otherwise)."""
        request = task_service_pb2.CreateTaskRequest(
            agent_id=agent_id, prompt=prompt, events_streaming=streaming, **fields
        )
        response: task_service_pb2.CreateTaskResponse = await self.stub.CreateTask(request, timeout=10)
        return response

    async def stream(
        self, task_id: str, *, deadline: float = 10.0, **fields: Any
    ) -> list[task_service_pb2.StreamEventsResponse]:
        """Every message of StreamEvents for `task_id` until the stream ends with OK."""
        call = self.stub.StreamEvents(
            task_service_pb2.StreamEventsRequest(task_id=task_id, **fields), timeout=deadline
        )
        return [message async for message in call]


def bridge_settings(platform: LocalPlatform, **overrides: Any) -> Settings:
    """Settings for a bridge on a free port pointed at `platform`, with quick reconnects and shutdown."""
    values: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "base_url": platform.url,
        "organization_id": platform.organization_id,
        "api_key": API_KEY,
        "events_base_url": None,
        "shutdown_grace": 2.0,
        "local_platform": False,
        "upstream_connect_timeout": 2.0,
        "upstream_read_timeout": 10.0,
        "sse_reconnect_attempts": 3,
        "sse_backoff_initial": 0.01,
        "sse_backoff_max": 0.05,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def bridge_stack(
    *,
    platform_options: Mapping[str, Any] | None = None,
    server_options: Mapping[str, Any] | None = None,
    **settings_overrides: Any,
) -> AsyncIterator[Stack]:
    """Start a local platform, a bridge on it and a channel; stop all three on exit.

    `platform_options` go to LocalPlatform, `server_options` to BridgeServer (interceptors, transports, ...),
    the other keywords override Settings fields.
    """
    options = {"step_delay": 0.005, "keepalive_interval": 0.2, **(platform_options or {})}
    async with LocalPlatform(**options) as platform:
        control = PlatformControl(platform.url)
        try:
            async with (
                BridgeServer(
                    bridge_settings(platform, **settings_overrides), **(server_options or {})
                ) as bridge,
                grpc.aio.insecure_channel(bridge.address) as channel,
            ):
                stub = task_service_pb2_grpc.TaskServiceStub(channel)
                yield Stack(platform=platform, bridge=bridge, channel=channel, stub=stub, control=control)
        finally:
            await control.aclose()


@dataclass(frozen=True)
class RpcFailure:
    """A failed call's status with its google.rpc details unpacked."""

    code: grpc.StatusCode
    message: str
    error_info: error_details_pb2.ErrorInfo | None
    bad_request: error_details_pb2.BadRequest | None
    retry_info: error_details_pb2.RetryInfo | None

    @property
    def fields(self) -> list[str]:
        """The fields BadRequest names, in order."""
        return [v.field for v in self.bad_request.field_violations] if self.bad_request else []


def failure_of(error: grpc.aio.AioRpcError) -> RpcFailure:
    """Unpack `error`'s status details (grpc-status-details-bin)."""
    status: status_pb2.Status | None = rpc_status.from_call(error)  # type: ignore[arg-type]
    error_info = bad_request = retry_info = None
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            error_info = error_details_pb2.ErrorInfo()
            detail.Unpack(error_info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry_info = error_details_pb2.RetryInfo()
            detail.Unpack(retry_info)
    return RpcFailure(
        code=error.code(),
        message=error.details() or "",
        error_info=error_info,
        bad_request=bad_request,
        retry_info=retry_info,
    )

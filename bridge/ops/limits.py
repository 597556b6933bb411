"""Limits: request sizes and how many calls and streams run at once.

Beyond `max_concurrent_calls` unary calls or `max_open_streams` open streams (per process), new calls are shed
at once with RESOURCE_EXHAUSTED and a RetryInfo delay: nothing waits in a queue. Health and reflection are
never shed, so probes keep answering under load. CreateTask prompts and output schemas beyond their limits
are refused with INVALID_ARGUMENT naming the field.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import grpc

from bridge.errors import FieldViolation, InvalidArgument, ResourceExhausted
from bridge.ops.calls import (
    Context,
    Handler,
    StreamBehavior,
    UnaryBehavior,
    abort,
    is_open_method,
    wrap_handler,
)
from bridge.ops.metrics import BridgeMetrics
from xpander.bridge.v1 import task_service_pb2

__all__ = ["Limits", "LimitsInterceptor", "check_create_task_sizes"]


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits in force; 0 means no limit."""

    max_concurrent_calls: int = 100
    max_open_streams: int = 1024
    max_prompt_bytes: int = 1024 * 1024
    max_schema_bytes: int = 256 * 1024
    retry_after: float = 1.0


def check_create_task_sizes(
    request: task_service_pb2.CreateTaskRequest, *, max_prompt_bytes: int, max_schema_bytes: int
) -> None:
    """INVALID_ARGUMENT when the prompt (UTF-8 bytes) or output schema (serialized bytes) is too large."""
    violations: list[FieldViolation] = []
    if max_prompt_bytes and len(request.prompt) * 4 > max_prompt_bytes:
        # Only long prompts pay for the encoding: a character is at most four UTF-8 bytes.
        size = len(request.prompt.encode())
        if size > max_prompt_bytes:
            violations.append(
                FieldViolation("prompt", f"is {size} bytes; at most {max_prompt_bytes} are accepted")
            )
    if max_schema_bytes and request.HasField("output_schema"):
        size = request.output_schema.ByteSize()
        if size > max_schema_bytes:
            violations.append(
                FieldViolation("output_schema", f"is {size} bytes; at most {max_schema_bytes} are accepted")
            )
    if violations:
        raise InvalidArgument(
            "request too large: " + "; ".join(f"{v.field} {v.description}" for v in violations),
            reason="REQUEST_TOO_LARGE",
            field_violations=violations,
        )


class LimitsInterceptor(grpc.aio.ServerInterceptor):
    """Sheds calls beyond the concurrency limits and refuses oversized CreateTask requests."""

    def __init__(self, limits: Limits, *, metrics: BridgeMetrics | None = None) -> None:
        self._limits = limits
        self._metrics = metrics
        self._calls = 0
        self._streams = 0

    @property
    def calls_in_flight(self) -> int:
        """Unary calls now running."""
        return self._calls

    @property
    def open_streams(self) -> int:
        """Server-streaming calls now open."""
        return self._streams

    def _shed(self, method: str, limit: str, maximum: int) -> ResourceExhausted:
        if self._metrics is not None:
            self._metrics.record_shed(method, limit)
        return ResourceExhausted(
            f"the bridge is at its limit of {maximum} {limit.replace('_', ' ')}; retry later",
            reason="BRIDGE_OVERLOADED",
            metadata={"limit": limit},
            retry_after=self._limits.retry_after,
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or is_open_method(method):
            return handler
        limits = self._limits

        def unary(behavior: UnaryBehavior) -> UnaryBehavior:
            async def limited(request: Any, context: Context) -> Any:
                if limits.max_concurrent_calls and self._calls >= limits.max_concurrent_calls:
                    await abort(context, self._shed(method, "concurrent_calls", limits.max_concurrent_calls))
                if isinstance(request, task_service_pb2.CreateTaskRequest):
                    try:
                        check_create_task_sizes(
                            request,
                            max_prompt_bytes=limits.max_prompt_bytes,
                            max_schema_bytes=limits.max_schema_bytes,
                        )
                    except InvalidArgument as error:
                        await abort(context, error)
                self._calls += 1
                try:
                    return await behavior(request, context)
                finally:
                    self._calls -= 1

            return limited

        def stream(behavior: StreamBehavior) -> StreamBehavior:
            async def limited(request: Any, context: Context) -> AsyncGenerator[Any, None]:
                if limits.max_open_streams and self._streams >= limits.max_open_streams:
                    await abort(context, self._shed(method, "open_streams", limits.max_open_streams))
                self._streams += 1
                try:
                    async with aclosing(behavior(request, context)) as messages:
                        async for message in messages:
                            yield message
                finally:
                    self._streams -= 1

            return limited

        return wrap_handler(handler, unary=unary, stream=stream)

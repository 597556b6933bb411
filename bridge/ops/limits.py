"""Limits: request sizes and how many calls and streams run at once.

Beyond `max_concurrent_calls` unary calls or `max_open_streams` open streams (per process), new calls are shed
at once with RESOURCE_EXHAUSTED and a RetryInfo delay: nothing waits in a queue. Health and reflection are
never shed, so probes keep answering under load. CreateTask prompts and output schemas beyond their limits
are refused with INVALID_ARGUMENT naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from bridge.errors import FieldViolation, InvalidArgument, ResourceExhausted
from bridge.ops.calls import Call, CallStage, MethodStage, OpsInterceptor, is_open_method
from bridge.ops.metrics import BridgeMetrics
from xpander.bridge.v1 import task_service_pb2

__all__ = ["CallLimits", "Limits", "LimitsInterceptor", "check_create_task_sizes"]


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


class CallLimits(CallStage):
    """Sheds calls beyond the concurrency limits and refuses oversized CreateTask requests.

    Counts the unary calls running and the streams open in this process. Health and reflection are left
    alone: they are never shed.
    """

    def __init__(self, limits: Limits, *, metrics: BridgeMetrics | None = None) -> None:
        self.limits = limits
        self._metrics = metrics
        self.calls_in_flight = 0
        """Unary calls now running."""
        self.open_streams = 0
        """Server-streaming calls now open."""

    def shed(self, method: str, limit: str, maximum: int) -> ResourceExhausted:
        """The refusal of a call to `method` at `limit` (of `maximum`), counted in the metrics."""
        if self._metrics is not None:
            self._metrics.record_shed(method, limit)
        return ResourceExhausted(
            f"the bridge is at its limit of {maximum} {limit.replace('_', ' ')}; retry later",
            reason="BRIDGE_OVERLOADED",
            metadata={"limit": limit},
            retry_after=self.limits.retry_after,
        )

    def bind(self, method: str, *, streaming: bool) -> MethodStage | None:
        if is_open_method(method):
            return None
        return _LimitedStream(self, method) if streaming else _LimitedUnary(self, method)


class _Limited(MethodStage):
    """A method's share of the process-wide limits: the counters live in `state`."""

    __slots__ = ("_method", "_state")

    def __init__(self, state: CallLimits, method: str) -> None:
        self._state = state
        self._method = method


class _LimitedUnary(_Limited):
    __slots__ = ()

    def enter(self, call: Call) -> None:
        state = self._state
        limits = state.limits
        if limits.max_concurrent_calls and state.calls_in_flight >= limits.max_concurrent_calls:
            raise state.shed(self._method, "concurrent_calls", limits.max_concurrent_calls)
        if isinstance(call.request, task_service_pb2.CreateTaskRequest):
            check_create_task_sizes(
                call.request,
                max_prompt_bytes=limits.max_prompt_bytes,
                max_schema_bytes=limits.max_schema_bytes,
            )
        state.calls_in_flight += 1

    def exit(self, call: Call, state: object, code: grpc.StatusCode) -> None:
        self._state.calls_in_flight -= 1


class _LimitedStream(_Limited):
    __slots__ = ()

    def enter(self, call: Call) -> None:
        state = self._state
        maximum = state.limits.max_open_streams
        if maximum and state.open_streams >= maximum:
            raise state.shed(self._method, "open_streams", maximum)
        state.open_streams += 1

    def exit(self, call: Call, state: object, code: grpc.StatusCode) -> None:
        self._state.open_streams -= 1


class LimitsInterceptor(OpsInterceptor):
    """An interceptor running `CallLimits` alone (`Operations` runs it with the other stages)."""

    def __init__(self, limits: Limits, *, metrics: BridgeMetrics | None = None) -> None:
        self._limits = CallLimits(limits, metrics=metrics)
        super().__init__([self._limits])

    @property
    def calls_in_flight(self) -> int:
        """Unary calls now running."""
        return self._limits.calls_in_flight

    @property
    def open_streams(self) -> int:
        """Server-streaming calls now open."""
        return self._limits.open_streams

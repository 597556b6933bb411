"""OpenTelemetry tracing: a span per RPC, a child span per platform request, W3C trace context end to end.

Off unless configured, and then free: `tracing_from_settings` returns None and no interceptor or hook is
installed. When on, the `ServerSpans` stage continues the caller's `traceparent` (gRPC metadata) into a SERVER
span that is current while the call runs, and the upstream transport (`bridge.ops.upstream`) opens a CLIENT
span per platform request and injects its `traceparent` into the HTTP headers.

A `Tracing` holds its own `TracerProvider` rather than the process-wide one, so tests and several servers in
one process stay apart.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, cast

import grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from bridge.ops.calls import Call, CallStage, MethodStage, OpsInterceptor, split_method
from bridge.ops.settings import OpsSettings

__all__ = ["ServerSpans", "Tracing", "TracingInterceptor", "tracing_from_settings"]

_PROPAGATOR = TraceContextTextMapPropagator()

# Server spans are errors only for these codes (OpenTelemetry's gRPC conventions): the others are the
# caller's doing.
_SERVER_ERROR_CODES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


class Tracing:
    """A tracer over its own provider, with the propagation the interceptor and transport use."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("xpander-bridge")

    @contextmanager
    def server_span(self, method: str, metadata: Any) -> Iterator[Span]:
        """A SERVER span for `method`, child of the caller's `traceparent`, current while the block runs."""
        carrier = {key: value for key, value in metadata or () if isinstance(value, str)}
        parent = _PROPAGATOR.extract(carrier)
        service, name = split_method(method)
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
        with self.tracer.start_as_current_span(
            method.lstrip("/"),
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield span

    @contextmanager
    def client_span(self, route: str, method: str, url: str) -> Iterator[Span]:
        """A CLIENT span for one platform request, current while the block runs."""
        with self.tracer.start_as_current_span(
            f"{method} {route}",
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": method, "url.full": url, "bridge.route": route},
        ) as span:
            yield span

    @staticmethod
    def inject(headers: MutableMapping[str, str]) -> None:
        """Add the current span's `traceparent` (and `tracestate`) to outgoing `headers`."""
        _PROPAGATOR.inject(headers)

    def stage(self) -> ServerSpans:
        """The call stage opening a span per call."""
        return ServerSpans(self)

    def interceptor(self) -> TracingInterceptor:
        """A server interceptor opening a span per call."""
        return TracingInterceptor(self)

    def shutdown(self) -> None:
        """Flush and stop the span processors."""
        self.provider.shutdown()


def tracing_from_settings(settings: OpsSettings) -> Tracing | None:
    """The configured tracing, or None when `settings.tracing` is `off`."""
    exporter: SpanExporter
    if settings.tracing == "off":
        return None
    if settings.tracing == "console":
        exporter = ConsoleSpanExporter()
    else:
        # Imported only here: the exporter pulls in its own gRPC client stack.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint)
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider)


def _end_status(span: Span, code: grpc.StatusCode) -> None:
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code in _SERVER_ERROR_CODES:
        span.set_status(Status(StatusCode.ERROR, code.name))


class ServerSpans(CallStage):
    """Runs every unary and server-streaming call inside a SERVER span continuing the caller's trace."""

    def __init__(self, tracing: Tracing) -> None:
        self._tracing = tracing

    def bind(self, method: str, *, streaming: bool) -> MethodStage:
        return _SpannedMethod(self._tracing)


class _SpannedMethod(MethodStage):
    __slots__ = ("_tracing",)

    def __init__(self, tracing: Tracing) -> None:
        self._tracing = tracing

    def enter(self, call: Call) -> tuple[AbstractContextManager[Span], Span]:
        # Entered here and left in `exit`, so the span is current while the behaviour runs.
        scope = self._tracing.server_span(call.method, call.metadata)
        return scope, scope.__enter__()

    def exit(self, call: Call, state: object, code: grpc.StatusCode) -> None:
        scope, span = cast(tuple[AbstractContextManager[Span], Span], state)
        _end_status(span, code)
        scope.__exit__(None, None, None)  # ends the span


class TracingInterceptor(OpsInterceptor):
    """An interceptor running `ServerSpans` alone (`Operations` runs it with the other stages)."""

    def __init__(self, tracing: Tracing) -> None:
        super().__init__([ServerSpans(tracing)])

"""Prometheus metrics of the bridge: gRPC calls, streams, events, upstream requests, reconnects and shedding.

Each `BridgeMetrics` owns its `CollectorRegistry`, so two servers in one process (tests) never share counts.
The `CallMetrics` stage records every call; the upstream transport (`bridge.ops.upstream`) records platform
requests; the platform client reports stream reconnects with `record_upstream_reconnect`. `MetricsServer`
exposes the registry over HTTP on its own port, on the server's event loop.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import grpc
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from bridge.ops.calls import Call, CallStage, MethodStage, OpsInterceptor, split_method
from xpander.bridge.v1 import events_pb2, task_service_pb2

__all__ = ["BridgeMetrics", "CallMetrics", "MetricsInterceptor", "MetricsServer"]


# Unary calls take milliseconds to tens of seconds; streams last until their task ends, so the top buckets
# reach half an hour.
_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
_UPSTREAM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_EVENT_TYPE_PREFIX = "TASK_EVENT_TYPE_"


class BridgeMetrics:
    """The bridge's metrics in their own registry, with recorder methods for the layers that report."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.grpc_requests = Counter(
            "bridge_grpc_requests_total",
            "gRPC calls finished, by method and status code.",
            ["service", "method", "code"],
            registry=self.registry,
        )
        self.grpc_duration = Histogram(
            "bridge_grpc_request_duration_seconds",
            "Duration of gRPC calls (of streams: until they end), by method.",
            ["service", "method"],
            buckets=_CALL_BUCKETS,
            registry=self.registry,
        )
        self.calls_in_flight = Gauge(
            "bridge_grpc_calls_in_flight",
            "Unary gRPC calls in progress.",
            registry=self.registry,
        )
        self.open_streams = Gauge(
            "bridge_grpc_open_streams",
            "Server-streaming gRPC calls open, by method.",
            ["service", "method"],
            registry=self.registry,
        )
        self.events_forwarded = ForwardedEvents()
        self.registry.register(self.events_forwarded)
        self.heartbeats = Counter(
            "bridge_heartbeats_sent_total",
            "Heartbeat events the bridge sent on quiet streams.",
            registry=self.registry,
        )
        self.upstream_requests = Counter(
            "bridge_upstream_requests_total",
            "Requests to the platform, by route and HTTP status (`error`/`cancelled`: no response).",
            ["route", "status"],
            registry=self.registry,
        )
        self.upstream_duration = Histogram(
            "bridge_upstream_request_duration_seconds",
            "Time until the platform's response headers, by route.",
            ["route"],
            buckets=_UPSTREAM_BUCKETS,
            registry=self.registry,
        )
        self.upstream_reconnects = Counter(
            "bridge_upstream_reconnects_total",
            "Reconnections of upstream event streams after they dropped, by route.",
            ["route"],
            registry=self.registry,
        )
        self.requests_shed = Counter(
            "bridge_requests_shed_total",
            "Calls refused with RESOURCE_EXHAUSTED at a limit, by method and limit.",
            ["service", "method", "limit"],
            registry=self.registry,
        )
        # Children of labelled metrics, looked up once: `labels()` costs more than the update itself. Routes
        # and statuses come from the bridge's own code and the platform's answers, a small set.
        self._upstream_counts: dict[tuple[str, int | str], Counter] = {}
        self._upstream_durations: dict[str, Histogram] = {}
        self._event_names: dict[int, str] = {}

    def record_upstream(self, route: str, status: int | str, seconds: float) -> None:
        """Count one platform request on `route` that ended with `status` (HTTP, or `error`) in `seconds`."""
        counter = self._upstream_counts.get((route, status))
        if counter is None:
            counter = self.upstream_requests.labels(route=route, status=str(status))
            self._upstream_counts[(route, status)] = counter
        counter.inc()
        duration = self._upstream_durations.get(route)
        if duration is None:
            duration = self._upstream_durations[route] = self.upstream_duration.labels(route=route)
        duration.observe(seconds)

    def record_upstream_reconnect(self, route: str = "task_events") -> None:
        """Count one reconnection of an upstream event stream."""
        self.upstream_reconnects.labels(route=route).inc()

    def record_shed(self, method: str, limit: str) -> None:
        """Count one call to `method` (`/pkg.Service/Method`) refused at `limit`."""
        service, name = split_method(method)
        self.requests_shed.labels(service=service, method=name, limit=limit).inc()

    def record_stream_message(self, message: Any) -> None:
        """Count a streamed response: task events by type, heartbeats apart; other messages are ignored."""
        if not isinstance(message, task_service_pb2.StreamEventsResponse):
            return
        event_type = message.event.type
        if event_type == events_pb2.TASK_EVENT_TYPE_HEARTBEAT:
            self.heartbeats.inc()
            return
        name = self._event_names.get(event_type)
        if name is None:
            try:
                name = events_pb2.TaskEventType.Name(event_type).removeprefix(_EVENT_TYPE_PREFIX).lower()
            except ValueError:
                name = "unknown"
            if name != "unknown":  # only the enum's values are kept: unknown numbers could be any
                self._event_names[event_type] = name
        counts = self.events_forwarded.counts
        counts[name] = counts.get(name, 0) + 1

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)

    def interceptor(self) -> MetricsInterceptor:
        """A server interceptor recording every call into these metrics."""
        return MetricsInterceptor(self)


class CallMetrics(CallStage):
    """Counts and times every unary and server-streaming call, tracks open streams and counts events.

    Unknown methods never get here (they have no handler): their names come from callers and would grow the
    label set.
    """

    def __init__(self, metrics: BridgeMetrics) -> None:
        self._metrics = metrics

    def bind(self, method: str, *, streaming: bool) -> MethodStage:
        service, name = split_method(method)
        metrics = self._metrics
        if streaming:
            return _StreamMetrics(metrics, service, name)
        return _UnaryMetrics(metrics, service, name)


class _MethodMetrics(MethodStage):
    """One method's metric children: its duration, and its call count per status code."""

    __slots__ = ("_counts", "_duration", "_method", "_metrics", "_service")

    def __init__(self, metrics: BridgeMetrics, service: str, method: str) -> None:
        self._metrics = metrics
        self._service = service
        self._method = method
        self._duration = metrics.grpc_duration.labels(service=service, method=method)
        self._counts: dict[grpc.StatusCode, Counter] = {}

    def _finish(self, call: Call, code: grpc.StatusCode) -> None:
        counter = self._counts.get(code)
        if counter is None:
            counter = self._metrics.grpc_requests.labels(
                service=self._service, method=self._method, code=code.name
            )
            self._counts[code] = counter
        counter.inc()
        self._duration.observe(time.perf_counter() - call.started)


class _UnaryMetrics(_MethodMetrics):
    __slots__ = ()

    def enter(self, call: Call) -> None:
        self._metrics.calls_in_flight.inc()

    def exit(self, call: Call, state: object, code: grpc.StatusCode) -> None:
        self._metrics.calls_in_flight.dec()
        self._finish(call, code)


class _StreamMetrics(_MethodMetrics):
    __slots__ = ("_open",)

    def __init__(self, metrics: BridgeMetrics, service: str, method: str) -> None:
        super().__init__(metrics, service, method)
        self._open = metrics.open_streams.labels(service=service, method=method)

    def enter(self, call: Call) -> None:
        self._open.inc()

    def exit(self, call: Call, state: object, code: grpc.StatusCode) -> None:
        self._open.dec()
        self._finish(call, code)

    def message(self, message: Any) -> None:
        self._metrics.record_stream_message(message)


class MetricsInterceptor(OpsInterceptor):
    """An interceptor running `CallMetrics` alone (`Operations` runs it with the other stages)."""

    def __init__(self, metrics: BridgeMetrics) -> None:
        super().__init__([CallMetrics(metrics)])


class ForwardedEvents(Collector):
    """`bridge_events_forwarded_total{type}`, kept as plain counts and read at scrape time.

    It is updated once per forwarded event, the hottest path of a stream: a dict increment on the event
    loop's thread costs a fraction of a labelled Counter's locked one. Scrapes run on the same loop.
    """

    _NAME = "bridge_events_forwarded"
    _HELP = "Task events sent to StreamEvents callers, by event type."

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def describe(self) -> list[Metric]:
        return [CounterMetricFamily(self._NAME, self._HELP, labels=["type"])]

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._NAME, self._HELP, labels=["type"])
        for name, count in list(self.counts.items()):
            family.add_metric([name], count)
        yield family


class MetricsServer:
    """`GET /metrics` over HTTP (aiohttp, on the running event loop) for one registry."""

    def __init__(self, metrics: BridgeMetrics) -> None:
        self._metrics = metrics
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    async def start(self, host: str, port: int) -> None:
        """Listen on `host:port`; port 0 picks a free port (see `port`)."""
        app = web.Application()
        app.router.add_get("/metrics", make_aiohttp_handler(self._metrics.registry))
        # Binding the socket here, not in aiohttp, is what tells the port that port 0 picked.
        sock = socket.create_server((host.strip("[]"), port), family=_family(host))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        self._port = sock.getsockname()[1]

    @property
    def port(self) -> int:
        """The port listened on; only after `start`."""
        if self._port is None:
            raise RuntimeError("metrics server not started")
        return self._port

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET

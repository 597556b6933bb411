"""The gRPC server: TaskService, health checking, server reflection, operations, and a graceful shutdown.

`BridgeServer` wires everything in one place. It is also the in-process API tests and tools use:

    async with BridgeServer(Settings(listen="127.0.0.1:0", ...)) as server:
        channel = grpc.aio.insecure_channel(server.address)

The operational parts (`bridge.ops.runtime.Operations`) come from the same settings: the start-up exposure
check, interceptors (tracing, access log, metrics, caller auth, limits), server options and compression, TLS
or mTLS on the listener, the observed upstream transports (verified TLS, metrics, spans, request ids), and
the metrics and probe listeners.

Shutdown (`stop()`, or SIGTERM/SIGINT under `xpander-bridge serve`): health turns NOT_SERVING, open event
streams end with UNAVAILABLE (naming the sequence to resume after), new calls are refused, and in-flight unary
calls get `shutdown_grace` seconds to finish.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import grpc
import httpx
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2
from pydantic import SecretStr

from bridge.config import Settings, parse_listen
from bridge.credentials import checked_default_key
from bridge.ops.auth import UnsafeExposureError
from bridge.ops.runtime import Operations
from bridge.ops.tls import upstream_verify
from bridge.ops.tracing import Tracing
from bridge.ops.upstream import environment_proxy
from bridge.ops.workers import Worker
from bridge.platform.client import PlatformClient, UpstreamLimits
from bridge.platform.follow import ReconnectPolicy
from bridge.platform.transport import HttpTransport
from bridge.servicer import SERVICE_NAME, TaskService
from xpander.bridge.v1 import task_service_pb2_grpc

if TYPE_CHECKING:
    from bridge.localplatform import LocalPlatform

__all__ = ["LOCAL_API_KEY", "REFLECTION_V1_SERVICE", "BridgeServer", "pointed_at_local_platform"]

_log = logging.getLogger(__name__)

LOCAL_API_KEY = "local-dev-key"
"""Default key with `--local-platform` when none is configured: the local platform accepts any key."""

REFLECTION_V1_SERVICE = "grpc.reflection.v1.ServerReflection"
"""The stable reflection service, which grpcio-reflection ships only as v1alpha."""

_CORE_BACKLOG_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.server.max_pending_requests", 20_000),
    ("grpc.server.max_pending_requests_hard_limit", 20_000),
)
"""gRPC core keeps calls the server has not picked up yet in a backlog, and past 1,000 of them (3,000 at most)
cancels new ones at random, unseen by the bridge: a burst of stream opens then ends in CANCELLED without any
interceptor, log line or metric knowing. A larger backlog lets the bridge's own limits (max_open_streams,
max_concurrent_calls) decide, with RetryInfo; calls still waiting after 30 s are cancelled by the core."""


_UNARY_KEEPALIVE_EXPIRY = 4.0
"""Seconds an idle upstream connection is kept: below common server keep-alive timeouts (uvicorn's 5 s), so
the bridge, not the platform, closes idle connections and a request rarely meets one just closed."""

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


class BridgeServer:
    """The bridge's gRPC server and everything it owns: platform client, health, reflection, operations.

    `worker` is the process's place under `--workers` (its address to bind, its index for the metrics port).
    `interceptors` and `options` are added after the operational ones; `http_transport` / `stream_transport`
    replace the base transports under the observed ones (which still add metrics, spans and request ids);
    `on_stream_reconnect` is called at each reconnection of an upstream event stream (besides the metric);
    `tracing` replaces the tracing the settings describe (e.g. an in-memory exporter in tests).
    """

    def __init__(
        self,
        settings: Settings,
        worker: Worker | None = None,
        *,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        options: Sequence[tuple[str, Any]] = (),
        http_transport: httpx.AsyncBaseTransport | None = None,
        stream_transport: httpx.AsyncBaseTransport | None = None,
        on_stream_reconnect: Callable[[], object] | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._settings = settings
        self._worker = worker
        self._listen = worker.address if worker is not None else settings.listen
        self._interceptors = tuple(interceptors)
        self._options = tuple(options)
        self._http_transport = http_transport
        self._stream_transport = stream_transport
        self._on_stream_reconnect = on_stream_reconnect
        self._tracing = tracing
        self._ops: Operations | None = None
        self._local_platform: LocalPlatform | None = None
        self._platform: PlatformClient | None = None
        self._server: grpc.aio.Server | None = None
        self._service: TaskService | None = None
        self._health = health.aio.HealthServicer()
        self._port: int | None = None
        self._stopping: asyncio.Future[None] | None = None

    # --- Lifecycle ----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the exposure, start the local platform (when configured), the platform client, the server."""
        if self._server is not None:
            raise RuntimeError("the bridge server is already started")
        try:
            await self._start()
        except BaseException:
            await self._release()
            raise

    async def _start(self) -> None:
        ops = Operations(
            self._settings,
            # The key the operator configured; the local platform's placeholder lends nothing worth guarding.
            default_key_configured=self._settings.api_key is not None,
            worker=self._worker,
            tracing=self._tracing,
        )
        self._ops = ops
        host, _ = parse_listen(self._listen)
        ops.check_startup(host)
        _check_default_key(self._settings)
        if self._settings.local_platform:
            self._settings = await self._start_local_platform(self._settings)
        settings = self._settings
        _warn_about_queueing(settings)
        self._platform = self._platform_client(ops)
        on_reconnect = self._on_stream_reconnect

        def stream_reconnected() -> None:
            ops.metrics.record_upstream_reconnect()
            if on_reconnect is not None:
                on_reconnect()

        self._service = TaskService(
            self._platform,
            default_api_key=settings.api_key.get_secret_value() if settings.api_key else None,
            default_organization_id=settings.organization_id,
            reconnect_policy=ReconnectPolicy(
                attempts=settings.sse_reconnect_attempts,
                initial_backoff=settings.sse_backoff_initial,
                max_backoff=settings.sse_backoff_max,
            ),
            on_stream_reconnect=stream_reconnected,
        )
        server = grpc.aio.server(
            interceptors=[*ops.interceptors(), *self._interceptors],
            options=[*ops.server_options(), *_CORE_BACKLOG_OPTIONS, *self._options],
            compression=ops.compression(),
        )
        task_service_pb2_grpc.add_TaskServiceServicer_to_server(self._service, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        for service in ("", SERVICE_NAME):
            await self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        _add_reflection(server)
        self._port = ops.add_port(server, self._listen)
        self._server = server
        await server.start()
        await ops.start(self._health)

    def _platform_client(self, ops: Operations) -> PlatformClient:
        settings = self._settings
        unary_transport, stream_transport = self._upstream_transports(ops)
        return PlatformClient(
            base_url=settings.base_url,
            events_base_url=settings.resolved_events_base_url,
            org_in_rest_path=settings.org_in_rest_path,
            connect_timeout=settings.upstream_connect_timeout,
            read_timeout=settings.upstream_read_timeout,
            read_retries=settings.upstream_read_retries,
            transport=unary_transport,
            stream_transport=stream_transport,
            limits=UpstreamLimits(
                body_bytes=settings.upstream_max_body_bytes,
                json_depth=settings.upstream_max_json_depth,
                retry_after=settings.upstream_max_retry_after,
                event_bytes=settings.sse_max_event_bytes,
            ),
        )

    def _upstream_transports(
        self, ops: Operations
    ) -> tuple[httpx.AsyncBaseTransport, httpx.AsyncBaseTransport]:
        """The unary and event-stream transports (or the given ones), observed.

        Unary calls keep connections alive; each event stream has a connection of its own, closed when
        the stream ends (reconnects follow a drop, not an idle connection). Each pool goes through the
        proxy the environment names for its host, if any.
        """
        settings = self._settings
        verify = upstream_verify(settings.upstream_ca_bundle)
        unary = self._http_transport or HttpTransport(
            max_connections=settings.upstream_max_connections,
            verify=verify,
            keepalive_expiry=_UNARY_KEEPALIVE_EXPIRY,
            proxy=environment_proxy(settings.base_url),
        )
        streams = self._stream_transport or HttpTransport(
            max_connections=settings.stream_max_connections,
            verify=verify,
            proxy=environment_proxy(settings.resolved_events_base_url),
        )
        return ops.upstream_transport(unary), ops.upstream_transport(streams)

    async def _start_local_platform(self, settings: Settings) -> Settings:
        from bridge.localplatform import LocalPlatform

        platform = LocalPlatform()
        await platform.start(host="127.0.0.1", port=0)
        self._local_platform = platform
        return pointed_at_local_platform(settings, platform.url, platform.organization_id)

    async def stop(self, grace: float | None = None) -> None:
        """Shut down gracefully (see the module docstring); `grace` defaults to `shutdown_grace`."""
        if self._stopping is not None:
            await asyncio.shield(self._stopping)
            return
        self._stopping = asyncio.get_running_loop().create_future()
        try:
            grace = self._settings.shutdown_grace if grace is None else grace
            await self._health.enter_graceful_shutdown()
            if self._service is not None:
                self._service.drain()
            if self._server is not None:
                await self._server.stop(grace)
        finally:
            try:
                await self._release()
            finally:
                self._stopping.set_result(None)

    async def _release(self) -> None:
        try:
            if self._platform is not None:
                await self._platform.aclose()
            if self._local_platform is not None:
                await self._local_platform.stop()
        finally:
            if self._ops is not None:
                await self._ops.stop()

    async def wait_for_termination(self) -> None:
        """Return when the server has stopped."""
        if self._server is not None:
            await self._server.wait_for_termination()

    async def __aenter__(self) -> BridgeServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- What tests and the CLI read ----------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The settings in effect (with `--local-platform`: pointing at the local platform)."""
        return self._settings

    @property
    def port(self) -> int:
        """The bound port (the free port picked when `listen` asked for port 0)."""
        if self._port is None:
            raise RuntimeError("the bridge server is not started")
        return self._port

    @property
    def address(self) -> str:
        """`host:port` to dial, e.g. `127.0.0.1:50051`."""
        host, _ = parse_listen(self._listen)
        return f"{host}:{self.port}"

    @property
    def operations(self) -> Operations:
        """The operational parts: metrics (and their port), tracing, limits, the probe port."""
        if self._ops is None:
            raise RuntimeError("the bridge server is not started")
        return self._ops

    @property
    def local_platform(self) -> LocalPlatform | None:
        """The embedded local platform, when started with it."""
        return self._local_platform

    @property
    def health(self) -> health.aio.HealthServicer:
        """The health servicer (to mark services NOT_SERVING from outside, e.g. under overload)."""
        return self._health

    @property
    def task_service(self) -> TaskService:
        """The TaskService servicer."""
        if self._service is None:
            raise RuntimeError("the bridge server is not started")
        return self._service


def pointed_at_local_platform(settings: Settings, url: str, organization_id: str) -> Settings:
    """`settings` aimed at a local platform at `url`; a placeholder key when none is configured."""
    return settings.model_copy(
        update={
            "base_url": url,
            "events_base_url": None,
            "organization_id": settings.organization_id or organization_id,
            "api_key": settings.api_key or SecretStr(LOCAL_API_KEY),
        }
    )


def _check_default_key(settings: Settings) -> None:
    """Refuse to start with a default key that could not travel in a header (serve exits 2 on this)."""
    try:
        checked_default_key(settings.api_key.get_secret_value() if settings.api_key else None)
    except ValueError as error:
        raise UnsafeExposureError(str(error)) from None


def _warn_about_queueing(settings: Settings) -> None:
    """Say so when unary calls beyond the upstream pool would wait for a connection rather than be shed."""
    limit = settings.max_concurrent_calls
    if limit == 0 or limit > settings.upstream_max_connections:
        _log.warning(
            "max_concurrent_calls (%s) exceeds upstream_max_connections (%d): calls beyond %d wait for an "
            "upstream connection instead of being shed",
            limit or "unlimited",
            settings.upstream_max_connections,
            settings.upstream_max_connections,
        )


# --- Reflection ---------------------------------------------------------------------------------------------


def _add_reflection(server: grpc.aio.Server) -> None:
    """Serve reflection as v1alpha (grpcio-reflection) and as v1, which has the same messages on the wire."""
    _register_reflection_v1_descriptor()
    names = (SERVICE_NAME, HEALTH_SERVICE, reflection.SERVICE_NAME, REFLECTION_V1_SERVICE)
    servicer = reflection.aio.ReflectionServicer(names)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    for service in (reflection.SERVICE_NAME, REFLECTION_V1_SERVICE):
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {"ServerReflectionInfo": handler}),)
        )


def _register_reflection_v1_descriptor() -> None:
    """Describe `grpc.reflection.v1` in the default pool, derived from v1alpha, so reflection can serve it."""
    pool = descriptor_pool.Default()
    v1_file = "grpc/reflection/v1/reflection.proto"
    try:
        pool.FindFileByName(v1_file)
        return
    except KeyError:
        pass
    old_package, new_package = "grpc.reflection.v1alpha", "grpc.reflection.v1"
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name = v1_file
    proto.package = new_package
    proto.options.Clear()

    def rename(type_name: str) -> str:
        return type_name.replace(f".{old_package}.", f".{new_package}.", 1)

    for message in proto.message_type:
        for field in message.field:
            if field.type_name:
                field.type_name = rename(field.type_name)
    for service in proto.service:
        for method in service.method:
            method.input_type = rename(method.input_type)
            method.output_type = rename(method.output_type)
    pool.Add(proto)

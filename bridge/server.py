"""The gRPC server: TaskService, health checking, server reflection, and a graceful shutdown.

`BridgeServer` wires everything in one place. It is also the in-process API tests and tools use:

    async with BridgeServer(Settings(listen="127.0.0.1:0", ...)) as server:
        channel = grpc.aio.insecure_channel(server.address)

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

from bridge.config import Settings
from bridge.platform.client import PlatformClient
from bridge.platform.follow import ReconnectPolicy
from bridge.servicer import SERVICE_NAME, TaskService
from xpander.bridge.v1 import task_service_pb2_grpc

if TYPE_CHECKING:
    from bridge.localplatform import LocalPlatform

__all__ = ["LOCAL_API_KEY", "REFLECTION_V1_SERVICE", "BridgeServer"]

_log = logging.getLogger(__name__)

LOCAL_API_KEY = "local-dev-key"
"""Default key with `--local-platform` when none is configured: the local platform accepts any key."""

REFLECTION_V1_SERVICE = "grpc.reflection.v1.ServerReflection"
"""The stable reflection service, which grpcio-reflection ships only as v1alpha."""

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


class BridgeServer:
    """The bridge's gRPC server and everything it owns: platform client, health, reflection, local platform.

    `interceptors`, `options` and `server_credentials` go to the grpc.aio server (TLS when credentials are
    given); `http_transport` / `stream_transport` replace the platform client's httpx transports (e.g. to
    measure upstream calls); `on_stream_reconnect` is called at each reconnection of an upstream event stream.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        options: Sequence[tuple[str, Any]] = (),
        server_credentials: grpc.ServerCredentials | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
        stream_transport: httpx.AsyncBaseTransport | None = None,
        on_stream_reconnect: Callable[[], object] | None = None,
    ) -> None:
        self._settings = settings
        self._interceptors = tuple(interceptors)
        self._options = tuple(options)
        self._server_credentials = server_credentials
        self._http_transport = http_transport
        self._stream_transport = stream_transport
        self._on_stream_reconnect = on_stream_reconnect
        self._local_platform: LocalPlatform | None = None
        self._platform: PlatformClient | None = None
        self._server: grpc.aio.Server | None = None
        self._service: TaskService | None = None
        self._health = health.aio.HealthServicer()
        self._port: int | None = None
        self._stopping: asyncio.Future[None] | None = None

    # --- Lifecycle ----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the local platform (when configured), the platform client and the gRPC server."""
        if self._server is not None:
            raise RuntimeError("the bridge server is already started")
        try:
            await self._start()
        except BaseException:
            await self._release()
            raise

    async def _start(self) -> None:
        if self._settings.local_platform:
            self._settings = await self._start_local_platform(self._settings)
        settings = self._settings
        self._platform = PlatformClient(
            base_url=settings.base_url,
            events_base_url=settings.resolved_events_base_url,
            org_in_rest_path=settings.org_in_rest_path,
            connect_timeout=settings.upstream_connect_timeout,
            read_timeout=settings.upstream_read_timeout,
            max_connections=settings.upstream_max_connections,
            stream_max_connections=settings.stream_max_connections,
            read_retries=settings.upstream_read_retries,
            transport=self._http_transport,
            stream_transport=self._stream_transport,
        )
        self._service = TaskService(
            self._platform,
            default_api_key=settings.api_key.get_secret_value() if settings.api_key else None,
            default_organization_id=settings.organization_id,
            reconnect_policy=ReconnectPolicy(
                attempts=settings.sse_reconnect_attempts,
                initial_backoff=settings.sse_backoff_initial,
                max_backoff=settings.sse_backoff_max,
            ),
            on_stream_reconnect=self._on_stream_reconnect,
        )
        server = grpc.aio.server(interceptors=self._interceptors, options=self._options)
        task_service_pb2_grpc.add_TaskServiceServicer_to_server(self._service, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        for service in ("", SERVICE_NAME):
            await self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        _add_reflection(server)
        if self._server_credentials is not None:
            self._port = server.add_secure_port(settings.listen, self._server_credentials)
        else:
            self._port = server.add_insecure_port(settings.listen)
        self._server = server
        await server.start()

    async def _start_local_platform(self, settings: Settings) -> Settings:
        from bridge.localplatform import LocalPlatform

        platform = LocalPlatform()
        await platform.start(host="127.0.0.1", port=0)
        self._local_platform = platform
        return settings.model_copy(
            update={
                "base_url": platform.url,
                "events_base_url": None,
                "organization_id": settings.organization_id or platform.organization_id,
                "api_key": settings.api_key or SecretStr(LOCAL_API_KEY),
            }
        )

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
        if self._platform is not None:
            await self._platform.aclose()
        if self._local_platform is not None:
            await self._local_platform.stop()

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
        host, _ = self._settings.listen_address
        return f"{host}:{self.port}"

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

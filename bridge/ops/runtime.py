"""`Operations`: every operational part of one server process, built from `OpsSettings`.

The server wires it in with a few calls::

    ops = Operations(settings, default_key_configured=api_key is not None, worker=worker)
    ops.check_startup(listen_host)                       # refuses an unsafe exposure
    server = grpc.aio.server(interceptors=ops.interceptors(), options=ops.server_options(),
                             compression=ops.compression())
    port = ops.add_port(server, listen)                  # TLS/mTLS or plaintext
    transport = ops.upstream_transport(HttpTransport(...))  # observed: metrics, spans, request ids
    await server.start(); await ops.start(health)        # metrics endpoint, probe port
    ...
    await ops.stop()
"""

from __future__ import annotations

import asyncio

import grpc
import httpx
from grpc_health.v1.health import aio as health_aio
from prometheus_client import CollectorRegistry

from bridge.ops.auth import BridgeTokens, CallerAuth, check_exposure
from bridge.ops.calls import CallStage, OpsInterceptor
from bridge.ops.connections import response_compression, server_options
from bridge.ops.limits import CallLimits, Limits
from bridge.ops.logs import AccessLog, scrub_grpc_logs
from bridge.ops.metrics import BridgeMetrics, CallMetrics, MetricsServer
from bridge.ops.probes import start_probe_server
from bridge.ops.settings import OpsSettings, split_address
from bridge.ops.tls import server_credentials_from
from bridge.ops.tracing import Tracing, tracing_from_settings
from bridge.ops.upstream import upstream_transport
from bridge.ops.workers import Worker
from bridge.redaction import remember

__all__ = ["Operations"]


class Operations:
    """Metrics, tracing, caller auth, limits, TLS and probe/metrics listeners of one server process."""

    def __init__(
        self,
        settings: OpsSettings,
        *,
        default_key_configured: bool,
        worker: Worker | None = None,
        tracing: Tracing | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.worker = worker
        self.default_key_configured = default_key_configured
        self.metrics = BridgeMetrics(registry)
        self.tracing = tracing if tracing is not None else tracing_from_settings(settings)
        self.tokens = BridgeTokens.load(
            settings.bridge_tokens_file,
            settings.bridge_tokens.get_secret_value() if settings.bridge_tokens is not None else None,
        )
        # Error text from the platform and grpc's own log lines are scrubbed of these too, not only log lines.
        remember(self.tokens.secret_values())
        scrub_grpc_logs()
        self.limits = CallLimits(
            Limits(
                max_concurrent_calls=settings.max_concurrent_calls,
                max_open_streams=settings.max_open_streams,
                max_prompt_bytes=settings.max_prompt_bytes,
                max_schema_bytes=settings.max_schema_bytes,
                retry_after=settings.shed_retry_after,
            ),
            metrics=self.metrics,
        )
        self._metrics_server: MetricsServer | None = None
        self._probe_server: grpc.aio.Server | None = None
        self.metrics_port: int | None = None
        self.probe_port: int | None = None

    def check_startup(self, listen_host: str) -> None:
        """Raise `UnsafeExposureError` when serving on `listen_host` would lend the default key to anyone."""
        check_exposure(
            listen_host,
            default_key_configured=self.default_key_configured,
            tokens=self.tokens,
            client_cert_required=self.settings.tls_require_client_cert,
            allow_unauthenticated=self.settings.allow_unauthenticated,
        )

    def secrets(self) -> tuple[str, ...]:
        """Secrets these settings hold (bridge tokens), for the log redactor."""
        return self.tokens.secret_values()

    def interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        """The server interceptors: one, running every call through these stages in order.

        Access log (request id and call secrets first, the line last), span (when tracing is on), metrics,
        caller auth (UNAUTHENTICATED), limits (RESOURCE_EXHAUSTED, request sizes), then the behaviour.
        """
        stages: list[CallStage] = [AccessLog()]
        if self.tracing is not None:
            stages.append(self.tracing.stage())
        stages += [
            CallMetrics(self.metrics),
            CallerAuth(
                self.tokens,
                default_key_configured=self.default_key_configured,
                client_cert_required=self.settings.tls_require_client_cert,
                allow_unauthenticated=self.settings.allow_unauthenticated,
            ),
            self.limits,
        ]
        return [OpsInterceptor(stages)]

    def server_options(self) -> list[tuple[str, int]]:
        """`grpc.aio.server(options=...)`."""
        return server_options(self.settings)

    def compression(self) -> grpc.Compression:
        """`grpc.aio.server(compression=...)`."""
        return response_compression(self.settings)

    def add_port(self, server: grpc.aio.Server, address: str) -> int:
        """Bind `address` with TLS (mTLS) when configured, else plaintext; returns the port."""
        credentials = server_credentials_from(self.settings)
        if credentials is None:
            return server.add_insecure_port(address)
        return server.add_secure_port(address, credentials)

    def upstream_transport(self, inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        """`inner` with metrics, spans and request-id forwarding around each platform request."""
        return upstream_transport(inner, metrics=self.metrics, tracing=self.tracing)

    async def start(self, health: health_aio.HealthServicer | None = None) -> None:
        """Open the metrics endpoint and the plaintext probe port when configured."""
        index = self.worker.index if self.worker is not None else 0
        if self.settings.metrics_listen is not None:
            host, port = split_address(self.settings.metrics_listen)
            self._metrics_server = MetricsServer(self.metrics)
            # Each worker has its own counters, so each serves them on its own port: port + worker index.
            await self._metrics_server.start(host, port + index if port else 0)
            self.metrics_port = self._metrics_server.port
        if self.settings.health_listen is not None and health is not None:
            self._probe_server, self.probe_port = await start_probe_server(
                self.settings.health_listen, health, reuse_port=self.settings.workers > 1
            )

    async def stop(self) -> None:
        """Close the listeners opened by `start` and flush pending spans."""
        if self._probe_server is not None:
            await self._probe_server.stop(None)
            self._probe_server = None
        if self._metrics_server is not None:
            await self._metrics_server.stop()
            self._metrics_server = None
        if self.tracing is not None:
            # Flushing may wait on the collector: keep it off the event loop.
            await asyncio.to_thread(self.tracing.shutdown)

"""gRPC server options: message size, keepalive, connection age, port sharing and response compression.

`max_connection_age` makes long-lived client channels reconnect now and then, so a load balancer (or
SO_REUSEPORT across workers) can spread them again after replicas are added; the grace period lets calls on
an aged connection finish. Compressed requests are decompressed whatever the settings say.
"""

from __future__ import annotations

import grpc

from bridge.ops.settings import OpsSettings

__all__ = ["response_compression", "server_options"]


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def server_options(settings: OpsSettings, *, reuse_port: bool | None = None) -> list[tuple[str, int]]:
    """Options for `grpc.aio.server(options=...)`.

    SO_REUSEPORT is on only with several workers (or when `reuse_port` says so): a lone process should fail
    to start when its port is taken, not share it with a stray instance.
    """
    share_port = settings.workers > 1 if reuse_port is None else reuse_port
    options: list[tuple[str, int]] = [
        ("grpc.max_receive_message_length", settings.max_receive_message_bytes),
        ("grpc.keepalive_time_ms", _ms(settings.keepalive_time)),
        ("grpc.keepalive_timeout_ms", _ms(settings.keepalive_timeout)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", _ms(settings.keepalive_min_client_interval)),
        ("grpc.so_reuseport", 1 if share_port else 0),
    ]
    if settings.max_connection_idle is not None:
        options.append(("grpc.max_connection_idle_ms", _ms(settings.max_connection_idle)))
    if settings.max_connection_age is not None:
        options.append(("grpc.max_connection_age_ms", _ms(settings.max_connection_age)))
    if settings.max_connection_age_grace is not None:
        options.append(("grpc.max_connection_age_grace_ms", _ms(settings.max_connection_age_grace)))
    return options


def response_compression(settings: OpsSettings) -> grpc.Compression:
    """The compression of responses, for `grpc.aio.server(compression=...)`."""
    return (
        grpc.Compression.Gzip if settings.response_compression == "gzip" else grpc.Compression.NoCompression
    )

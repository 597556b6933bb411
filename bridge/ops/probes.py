"""A plaintext port serving only the gRPC health service, for probes that cannot speak TLS.

Kubernetes' native gRPC probes connect without TLS. When the main listener uses TLS (or mTLS), the probes
point at this port instead; it shares the main server's `HealthServicer`, so both report the same status,
and it serves nothing else.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

__all__ = ["start_probe_server"]


async def start_probe_server(
    address: str, health: health_aio.HealthServicer, *, reuse_port: bool = False
) -> tuple[grpc.aio.Server, int]:
    """Start a server for `health` alone on `address`; returns it (stop it with the main one) and its port."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 1 if reuse_port else 0)])
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port(address)
    await server.start()
    return server, port

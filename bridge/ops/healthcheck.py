"""`python -m bridge.ops.healthcheck`: exit 0 when the bridge's gRPC health service says SERVING.

The container image's HEALTHCHECK runs it (grpc_health_probe is not in the image). Without `--address` it
probes the plaintext probe port (`BRIDGE_HEALTH_LISTEN`) when one is set, else the main listener
(`BRIDGE_LISTEN`, default 127.0.0.1:50051), on loopback when the listener binds every interface.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2

from bridge.ops.settings import split_address
from bridge.ops.tls import channel_credentials

__all__ = ["default_address", "main", "probe"]

_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "[::]", ""})


def default_address(environ: Mapping[str, str]) -> str:
    """The address to probe from the bridge's own environment variables."""
    listen = environ.get("BRIDGE_HEALTH_LISTEN") or environ.get("BRIDGE_LISTEN") or "127.0.0.1:50051"
    host, port = split_address(listen)
    if host in _WILDCARD_HOSTS:
        host = "[::1]" if ":" in host else "127.0.0.1"
    return f"{host}:{port}"


def probe(
    address: str,
    *,
    service: str = "",
    timeout: float = 3.0,
    credentials: grpc.ChannelCredentials | None = None,
    server_name: str | None = None,
) -> str:
    """The serving status of `service` at `address` (e.g. `SERVING`), or the RPC error's code name."""
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    channel = (
        grpc.secure_channel(address, credentials, options=options)
        if credentials is not None
        else grpc.insecure_channel(address)
    )
    with channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        try:
            response = check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            return code.name if code is not None else "UNKNOWN"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def main(argv: Sequence[str] | None = None) -> int:
    """Probe once; print the status when it is not SERVING."""
    parser = argparse.ArgumentParser(prog="python -m bridge.ops.healthcheck", description=__doc__)
    parser.add_argument(
        "--address", help="host:port to probe (default: from BRIDGE_HEALTH_LISTEN/BRIDGE_LISTEN)"
    )
    parser.add_argument("--service", default="", help="service name to ask about; '' is the whole server")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer")
    parser.add_argument("--tls", action="store_true", help="speak TLS (trusting --ca-file or the system CAs)")
    parser.add_argument("--ca-file", type=Path, help="PEM CA that signed the bridge's certificate")
    parser.add_argument("--cert-file", type=Path, help="client certificate, when the bridge requires one")
    parser.add_argument("--key-file", type=Path, help="client certificate's key")
    parser.add_argument("--server-name", help="name expected in the bridge's certificate")
    args = parser.parse_args(argv)
    address = args.address or default_address(os.environ)
    credentials = (
        channel_credentials(args.ca_file, cert_file=args.cert_file, key_file=args.key_file)
        if args.tls or args.ca_file is not None
        else None
    )
    status = probe(
        address,
        service=args.service,
        timeout=args.timeout,
        credentials=credentials,
        server_name=args.server_name,
    )
    if status == "SERVING":
        return 0
    print(f"{address}: {status}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())

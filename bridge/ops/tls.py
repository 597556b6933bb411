"""TLS credentials: the gRPC listener (optionally mTLS), gRPC clients of the bridge, and the platform.

Towards the platform certificates are always verified: against the system's CA bundle by default, or against
`upstream_ca_bundle` (a private CA, a TLS-inspecting proxy).
"""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc

from bridge.ops.settings import OpsSettings

__all__ = ["channel_credentials", "server_credentials", "server_credentials_from", "upstream_verify"]


def server_credentials(
    cert_file: Path,
    key_file: Path,
    *,
    client_ca_file: Path | None = None,
    require_client_cert: bool = False,
) -> grpc.ServerCredentials:
    """Credentials for `server.add_secure_port`: the listener's chain and key; client CA for mTLS."""
    if require_client_cert and client_ca_file is None:
        raise ValueError("requiring client certificates needs a client CA")
    return grpc.ssl_server_credentials(
        [(key_file.read_bytes(), cert_file.read_bytes())],
        root_certificates=client_ca_file.read_bytes() if client_ca_file is not None else None,
        require_client_auth=require_client_cert,
    )


def server_credentials_from(settings: OpsSettings) -> grpc.ServerCredentials | None:
    """The listener's credentials from `settings`; None when TLS is off (plaintext)."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    return server_credentials(
        settings.tls_cert_file,
        settings.tls_key_file,
        client_ca_file=settings.tls_client_ca_file,
        require_client_cert=settings.tls_require_client_cert,
    )


def channel_credentials(
    ca_file: Path | None = None, *, cert_file: Path | None = None, key_file: Path | None = None
) -> grpc.ChannelCredentials:
    """Credentials of a bridge client: the CA to trust (system's when None) and a client certificate."""
    if (cert_file is None) != (key_file is None):
        raise ValueError("a client certificate needs its key, and a key its certificate")
    return grpc.ssl_channel_credentials(
        root_certificates=ca_file.read_bytes() if ca_file is not None else None,
        private_key=key_file.read_bytes() if key_file is not None else None,
        certificate_chain=cert_file.read_bytes() if cert_file is not None else None,
    )


def upstream_verify(ca_bundle: Path | None = None) -> ssl.SSLContext | bool:
    """httpx's `verify` for the platform: True (system CAs) or a context trusting `ca_bundle`."""
    if ca_bundle is None:
        return True
    if not ca_bundle.is_file():
        raise FileNotFoundError(f"upstream CA bundle {ca_bundle} does not exist")
    return ssl.create_default_context(cafile=str(ca_bundle))

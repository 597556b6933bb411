"""Operations settings: observability, security, limits, connections and processes.

`OpsSettings` reads its environment variables itself (the alias of each field) and takes flags as keyword
arguments, which win. `add_arguments` and `overrides_from_args` derive the `serve` flags from the same fields,
so a setting is declared once.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["OpsSettings", "add_arguments", "overrides_from_args", "split_address"]

_MIB = 1024 * 1024


def split_address(value: str) -> tuple[str, int]:
    """Split `host:port` (IPv6 hosts in brackets) into host and port; port 0 asks for a free port."""
    host, sep, port_text = value.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"expected host:port, got {value!r}")
    return host, int(port_text)


class OpsSettings(BaseSettings):
    """How the bridge is observed, secured, limited and run. Immutable."""

    model_config = SettingsConfigDict(
        frozen=True, populate_by_name=True, extra="forbid", env_file=None, case_sensitive=False
    )

    # --- Observability ------------------------------------------------------------------------------------
    metrics_listen: str | None = Field(
        default=None,
        validation_alias="BRIDGE_METRICS_LISTEN",
        description="host:port of the Prometheus /metrics endpoint; off when unset. "
        "With several workers, worker i serves on port + i.",
    )
    log_format: Literal["console", "json"] = Field(
        default="console",
        validation_alias="BRIDGE_LOG_FORMAT",
        description="`json` (one object a line) or `console` (key=value).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", validation_alias="BRIDGE_LOG_LEVEL", description="Lowest level logged."
    )
    tracing: Literal["off", "otlp", "console"] = Field(
        default="off",
        validation_alias="BRIDGE_TRACING",
        description="Where spans go: `otlp` (gRPC exporter; OTEL_EXPORTER_OTLP_* apply), `console`, or `off` "
        "(no tracing code runs at all).",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias="BRIDGE_OTLP_ENDPOINT",
        description="OTLP/gRPC collector, e.g. `http://otel-collector:4317`; exporter default if unset.",
    )
    trace_sample_ratio: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        validation_alias="BRIDGE_TRACE_SAMPLE_RATIO",
        description="Share of new traces sampled; a sampled incoming `traceparent` is always followed.",
    )
    service_name: str = Field(
        default="xpander-bridge",
        validation_alias="BRIDGE_SERVICE_NAME",
        description="`service.name` of the spans.",
    )

    # --- Security -----------------------------------------------------------------------------------------
    tls_cert_file: Path | None = Field(
        default=None,
        validation_alias="BRIDGE_TLS_CERT_FILE",
        description="PEM certificate chain of the gRPC listener; TLS is on when set (with the key).",
    )
    tls_key_file: Path | None = Field(
        default=None,
        validation_alias="BRIDGE_TLS_KEY_FILE",
        description="PEM private key of the gRPC listener.",
    )
    tls_client_ca_file: Path | None = Field(
        default=None,
        validation_alias="BRIDGE_TLS_CLIENT_CA_FILE",
        description="PEM CA bundle that client certificates are verified against (mTLS).",
    )
    tls_require_client_cert: bool = Field(
        default=False,
        validation_alias="BRIDGE_TLS_REQUIRE_CLIENT_CERT",
        description="Refuse connections without a client certificate signed by the client CA; this then "
        "authenticates callers.",
    )
    upstream_ca_bundle: Path | None = Field(
        default=None,
        validation_alias="BRIDGE_UPSTREAM_CA_BUNDLE",
        description="PEM CA bundle for verifying the platform's certificate, instead of the system's.",
    )
    bridge_tokens_file: Path | None = Field(
        default=None,
        validation_alias="BRIDGE_TOKENS_FILE",
        description="File of caller tokens, one `token` or `name:token` a line (`#` comments).",
    )
    bridge_tokens: SecretStr | None = Field(
        default=None,
        validation_alias="BRIDGE_TOKENS",
        description="Caller tokens, comma-separated `token` or `name:token` entries. Never logged.",
    )
    allow_unauthenticated: bool = Field(
        default=False,
        validation_alias="BRIDGE_ALLOW_UNAUTHENTICATED",
        description="Serve the default platform key to unauthenticated callers on a non-loopback address.",
    )

    # --- Limits -------------------------------------------------------------------------------------------
    max_receive_message_bytes: int = Field(
        default=4 * _MIB,
        ge=1024,
        validation_alias="BRIDGE_MAX_RECEIVE_MESSAGE_BYTES",
        description="Largest request message accepted.",
    )
    max_prompt_bytes: int = Field(
        default=1 * _MIB,
        ge=0,
        validation_alias="BRIDGE_MAX_PROMPT_BYTES",
        description="Largest CreateTask prompt (UTF-8 bytes); 0 means no limit.",
    )
    max_schema_bytes: int = Field(
        default=256 * 1024,
        ge=0,
        validation_alias="BRIDGE_MAX_SCHEMA_BYTES",
        description="Largest CreateTask output_schema (serialized bytes); 0 means no limit.",
    )
    max_concurrent_calls: int = Field(
        default=100,
        ge=0,
        validation_alias="BRIDGE_MAX_CONCURRENT_CALLS",
        description="Unary calls in progress per process before new ones are shed; 0 means no limit. Each "
        "holds an upstream connection: keep it at most `upstream_max_connections`, or calls beyond the pool "
        "wait for a connection instead of being shed.",
    )
    max_open_streams: int = Field(
        default=1024,
        ge=0,
        validation_alias="BRIDGE_MAX_OPEN_STREAMS",
        description="StreamEvents calls open per process before new ones are shed; 0 means no limit.",
    )
    shed_retry_after: float = Field(
        default=1.0,
        gt=0,
        validation_alias="BRIDGE_SHED_RETRY_AFTER",
        description="Seconds a shed caller is told to wait (RetryInfo).",
    )

    # --- Connections --------------------------------------------------------------------------------------
    keepalive_time: float = Field(
        default=60.0,
        gt=0,
        validation_alias="BRIDGE_KEEPALIVE_TIME",
        description="Seconds of silence on a connection before the server pings the client.",
    )
    keepalive_timeout: float = Field(
        default=20.0,
        gt=0,
        validation_alias="BRIDGE_KEEPALIVE_TIMEOUT",
        description="Seconds to wait for the ping's answer before closing the connection.",
    )
    keepalive_min_client_interval: float = Field(
        default=10.0,
        gt=0,
        validation_alias="BRIDGE_KEEPALIVE_MIN_CLIENT_INTERVAL",
        description="Shortest interval between client pings tolerated (also without calls).",
    )
    max_connection_idle: float | None = Field(
        default=None,
        gt=0,
        validation_alias="BRIDGE_MAX_CONNECTION_IDLE",
        description="Seconds a connection without calls is kept; forever when unset.",
    )
    max_connection_age: float | None = Field(
        default=None,
        gt=0,
        validation_alias="BRIDGE_MAX_CONNECTION_AGE",
        description="Seconds after which a connection is asked to go away (GOAWAY) so clients rebalance.",
    )
    max_connection_age_grace: float | None = Field(
        default=None,
        gt=0,
        validation_alias="BRIDGE_MAX_CONNECTION_AGE_GRACE",
        description="Seconds calls on an aged connection may still run before it is closed.",
    )
    response_compression: Literal["none", "gzip"] = Field(
        default="none",
        validation_alias="BRIDGE_RESPONSE_COMPRESSION",
        description="Compression of responses; compressed requests (gzip, deflate) are always accepted.",
    )

    # --- Processes ----------------------------------------------------------------------------------------
    workers: int = Field(
        default=1,
        ge=1,
        le=256,
        validation_alias="BRIDGE_WORKERS",
        description="Processes serving the same port (SO_REUSEPORT); the parent supervises them.",
    )
    uvloop: bool = Field(
        default=True,
        validation_alias="BRIDGE_UVLOOP",
        description="Run on uvloop when it is installed.",
    )
    health_listen: str | None = Field(
        default=None,
        validation_alias="BRIDGE_HEALTH_LISTEN",
        description="Extra plaintext host:port serving only grpc.health.v1, for probes that cannot do TLS.",
    )

    @field_validator("metrics_listen", "health_listen", "otlp_endpoint")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("metrics_listen", "health_listen")
    @classmethod
    def _valid_address(cls, value: str | None) -> str | None:
        if value is not None:
            split_address(value)
        return value

    @model_validator(mode="after")
    def _consistent_tls(self) -> OpsSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file needs tls_cert_file and tls_key_file")
        if self.tls_require_client_cert and self.tls_client_ca_file is None:
            raise ValueError("tls_require_client_cert needs tls_client_ca_file")
        return self

    @property
    def tls_enabled(self) -> bool:
        """Whether the gRPC listener speaks TLS."""
        return self.tls_cert_file is not None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add a flag per `OpsSettings` field but secrets (`--metrics-listen`, ...), default unset."""
    group = parser.add_argument_group("operations")
    for name, field in OpsSettings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_text = f"{field.description} [env {field.validation_alias}]"
        kind = field.annotation
        # `X | None` takes the flag type of X; a Literal offers its values as choices.
        if get_origin(kind) in (Union, UnionType):
            kind = next(arg for arg in get_args(kind) if arg is not type(None))
        if kind is SecretStr:
            continue  # secrets only from the environment: a flag would show in the process list
        if kind is bool:
            group.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        elif kind is int:
            group.add_argument(flag, dest=name, type=int, default=None, help=help_text)
        elif kind is float:
            group.add_argument(flag, dest=name, type=float, default=None, help=help_text)
        elif get_origin(kind) is Literal:
            group.add_argument(flag, dest=name, choices=get_args(kind), default=None, help=help_text)
        else:
            group.add_argument(flag, dest=name, default=None, help=help_text)


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The `OpsSettings` keyword arguments given as flags (those left unset are absent)."""
    return {
        name: getattr(args, name)
        for name in OpsSettings.model_fields
        if getattr(args, name, None) is not None
    }

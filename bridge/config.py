"""The bridge's settings: one typed, frozen object read once from flags and environment variables.

Fields are grouped by concern (server, platform, upstream HTTP, event streams); the operational ones
(observability, TLS and caller auth, limits, connections, processes) come from
`bridge.ops.settings.OpsSettings`, which `Settings` extends, so one object carries everything under flat
`BRIDGE_*` / `XPANDER_*` names. Each field names its environment variable in `validation_alias`; flags given
to `xpander-bridge serve` are passed as keyword arguments and win over the environment. To add a setting, add
a field to the right group with its alias and a description: the settings tables of docs/operations.md list
the same names (a test checks).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from bridge.ops.settings import OpsSettings

__all__ = [
    "DEFAULT_BASE_URL",
    "Settings",
    "events_base_url_for",
    "normalize_base_url",
    "org_in_rest_path",
    "parse_listen",
]

DEFAULT_BASE_URL = "https://inbound.xpander.ai"
"""The platform's cloud REST host (docs/platform-contract.md §1.1)."""

# docs/platform-contract.md §1.3: the inbound REST hosts whose event streams live on a different host.
_EVENTS_HOST_BY_INBOUND_HOST = {
    "inbound.xpander.ai": "https://agent-controller.xpander.ai",
    "inbound.stg.xpander.ai": "https://agent-controller.stg.xpander.ai",
}
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def normalize_base_url(value: str) -> str:
    """`value` as an absolute http(s) URL, no trailing slash; `https://` is added when no scheme is given."""
    url = value.strip()
    if not url:
        raise ValueError("must not be empty")
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"scheme must be http or https, not {parts.scheme!r}")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query or fragment")
    return url.rstrip("/")


def org_in_rest_path(base_url: str) -> bool:
    """Whether REST paths carry `/{organization_id}` after `base_url` (docs/platform-contract.md §1.2)."""
    parts = urlsplit(base_url)
    first_segment = parts.path.strip("/").split("/", 1)[0]
    return (
        "agent-controller" in (parts.hostname or "")
        or parts.port == 9016
        or first_segment == "agent-controller"
    )


def events_base_url_for(base_url: str) -> str:
    """The host serving task event streams for a REST `base_url` (docs/platform-contract.md §1.3)."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if host in _EVENTS_HOST_BY_INBOUND_HOST:
        return _EVENTS_HOST_BY_INBOUND_HOST[host]
    if host in _LOOPBACK_HOSTS and parts.port == 8085:
        return "http://localhost:9016"
    return base_url


def parse_listen(value: str) -> tuple[str, int]:
    """Split `host:port` (IPv6 hosts in brackets) into host and port; port 0 asks for a free port."""
    host, sep, port_text = value.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"expected host:port, got {value!r}")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"port out of range in {value!r}")
    return host, port


def _valid_listen(value: str) -> str:
    parse_listen(value)
    return value.strip()


class Settings(OpsSettings):
    """Everything the bridge reads at start-up. Immutable; derive variants with `model_copy(update=...)`."""

    model_config = SettingsConfigDict(
        frozen=True,
        populate_by_name=True,
        extra="forbid",
        env_file=None,
        # Environment names are the aliases, exactly; the field names are for keyword arguments.
        case_sensitive=False,
    )

    # --- Server -------------------------------------------------------------------------------------------
    listen: Annotated[str, AfterValidator(_valid_listen)] = Field(
        default="127.0.0.1:50051",
        validation_alias="BRIDGE_LISTEN",
        description="host:port the gRPC server binds; port 0 picks a free port.",
    )
    shutdown_grace: float = Field(
        default=10.0,
        ge=0,
        validation_alias="BRIDGE_SHUTDOWN_GRACE",
        description="Seconds in-flight unary calls get to finish on SIGTERM/SIGINT.",
    )
    local_platform: bool = Field(
        default=False,
        validation_alias="BRIDGE_LOCAL_PLATFORM",
        description="Start the embedded local platform in-process and point the bridge at it.",
    )

    # --- Platform -----------------------------------------------------------------------------------------
    base_url: str = Field(
        default=DEFAULT_BASE_URL,
        validation_alias="XPANDER_BASE_URL",
        description="The platform's REST base URL; `https://` is added when no scheme is given.",
    )
    organization_id: str | None = Field(
        default=None,
        validation_alias="XPANDER_ORGANIZATION_ID",
        description="Default organization when a call sends no `x-organization-id` metadata.",
    )
    api_key: SecretStr | None = Field(
        default=None,
        validation_alias="XPANDER_API_KEY",
        description="Default platform API key when a call sends none. Never logged.",
    )
    events_base_url: str | None = Field(
        default=None,
        validation_alias="XPANDER_EVENTS_BASE_URL",
        description="Host of the task event streams; derived from the base URL when unset.",
    )

    # --- Upstream HTTP ------------------------------------------------------------------------------------
    upstream_connect_timeout: float = Field(
        default=5.0,
        gt=0,
        validation_alias="BRIDGE_UPSTREAM_CONNECT_TIMEOUT",
        description="Seconds to open a connection to the platform.",
    )
    upstream_read_timeout: float = Field(
        default=60.0,
        gt=0,
        validation_alias="BRIDGE_UPSTREAM_READ_TIMEOUT",
        description="Seconds a unary platform call may take; the gRPC deadline shortens it further.",
    )
    upstream_max_connections: int = Field(
        default=100,
        ge=1,
        validation_alias="BRIDGE_UPSTREAM_MAX_CONNECTIONS",
        description="Size of the connection pool for unary platform calls.",
    )
    upstream_read_retries: int = Field(
        default=2,
        ge=0,
        validation_alias="BRIDGE_UPSTREAM_READ_RETRIES",
        description="Extra attempts of a read (GET) whose connection could not be opened.",
    )
    upstream_max_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        validation_alias="BRIDGE_UPSTREAM_MAX_BODY_BYTES",
        description="Largest platform answer to a unary call, in bytes after decompression.",
    )
    upstream_max_json_depth: int = Field(
        default=32,
        ge=4,
        le=32,
        validation_alias="BRIDGE_UPSTREAM_MAX_JSON_DEPTH",
        description="Deepest nesting of objects and arrays accepted in platform JSON; at most 32, so the "
        "messages built from it stay within protobuf's decoding limit of 100 levels.",
    )
    upstream_max_retry_after: float = Field(
        default=3600.0,
        gt=0,
        validation_alias="BRIDGE_UPSTREAM_MAX_RETRY_AFTER",
        description="Cap, in seconds, on a platform Retry-After passed on to callers as RetryInfo.",
    )

    # --- Event streams ------------------------------------------------------------------------------------
    stream_max_connections: int = Field(
        default=10_000,
        ge=1,
        validation_alias="BRIDGE_STREAM_MAX_CONNECTIONS",
        description="Most concurrent upstream event streams (their own pool, apart from unary calls).",
    )
    sse_reconnect_attempts: int = Field(
        default=5,
        ge=0,
        validation_alias="BRIDGE_SSE_RECONNECT_ATTEMPTS",
        description="Reconnections in a row after the upstream event stream drops, before UNAVAILABLE.",
    )
    sse_backoff_initial: float = Field(
        default=0.1,
        gt=0,
        validation_alias="BRIDGE_SSE_BACKOFF_INITIAL",
        description="Seconds before the first reconnection; doubles per attempt, with jitter.",
    )
    sse_backoff_max: float = Field(
        default=5.0,
        gt=0,
        validation_alias="BRIDGE_SSE_BACKOFF_MAX",
        description="Longest wait between reconnections, in seconds.",
    )

    sse_max_event_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        validation_alias="BRIDGE_SSE_MAX_EVENT_BYTES",
        description="Largest single event on a platform event stream, in bytes of SSE text.",
    )

    @field_validator("base_url")
    @classmethod
    def _normalize_base_url(cls, value: str) -> str:
        return normalize_base_url(value)

    @field_validator("events_base_url")
    @classmethod
    def _normalize_events_base_url(cls, value: str | None) -> str | None:
        return None if value is None or not value.strip() else normalize_base_url(value)

    @field_validator("organization_id")
    @classmethod
    def _blank_organization_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("api_key")
    @classmethod
    def _blank_key_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        # A key read from a file often ends with a newline, which must never reach a header.
        key = value.get_secret_value().strip() if value is not None else ""
        return SecretStr(key) if key else None

    @model_validator(mode="after")
    def _backoff_bounds(self) -> Settings:
        if self.sse_backoff_max < self.sse_backoff_initial:
            raise ValueError("sse_backoff_max must be at least sse_backoff_initial")
        return self

    @property
    def listen_address(self) -> tuple[str, int]:
        """`listen` split into host and port."""
        return parse_listen(self.listen)

    @property
    def resolved_events_base_url(self) -> str:
        """Host of the task event streams: the override, else derived from `base_url` (contract §1.3)."""
        return self.events_base_url or events_base_url_for(self.base_url)

    @property
    def org_in_rest_path(self) -> bool:
        """Whether REST paths carry the organization id (docs/platform-contract.md §1.2)."""
        return org_in_rest_path(self.base_url)

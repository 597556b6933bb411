"""The request bodies the local platform accepts, create and update, validated as it would.

Models are strict (no "1" → 1 coercion) so a wrong JSON type is a 422 naming the field, and they ignore
unknown keys so newer SDKs that send more keys keep working. Enums are `Literal`s of the wire strings.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bridge.localplatform.wire import ApiError

__all__ = [
    "TERMINAL_STATUSES",
    "CreateTaskBody",
    "TaskStatus",
    "UpdateTaskBody",
    "parse_body",
]

TaskStatus = Literal["pending", "executing", "paused", "error", "failed", "completed", "stopped"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "error", "stopped"})

OutputFormat = Literal["text", "markdown", "json", "voice"]
ThinkMode = Literal["default", "harder"]
ReasoningEffort = Literal["low", "medium", "high", "xhigh"]

_M = TypeVar("_M", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class User(_Strict):
    """The caller's user; the SDK refuses a user without `email`, so the platform must too."""

    id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str
    additional_attributes: dict[str, Any] | None = None
    timezone: str | None = None


class Attachment(_Strict):
    """A file reference attached to the input (SDK 2.0.537)."""

    url: str
    name: str | None = None
    mime: str | None = None
    size: int | None = None
    kind: Literal["image", "pdf", "document", "text", "audio", "video", "archive", "unknown"] | None = None
    sha256: str | None = None
    expires_at: str | None = None
    source: str | None = None
    transcript: str | None = None


class Principal(_Strict):
    """The typed identity behind a task (SDK 2.0.537)."""

    kind: Literal["user", "slack", "api_key", "system", "anonymous"]
    id: str
    email: str | None = None
    display_name: str | None = None

    @field_validator("id")
    @classmethod
    def _plain_id(cls, value: str) -> str:
        value = value.strip()
        if not value or ":" in value or any(ch.isspace() for ch in value):
            raise ValueError("must be non-empty and contain no ':' or whitespace")
        return value


class ExecutionInput(_Strict):
    """The `input` object of a task."""

    text: str | None = ""
    files: list[str] | None = Field(default_factory=list)
    user: User | None = None
    attachments: list[Attachment] | None = Field(default_factory=list)
    principal: Principal | None = None


class McpServer(_Strict):
    """An MCP server handed to the task; echoed back with every key, as the SDK sends it."""

    id: str | None = None
    type: Literal["local", "remote"] | None = "remote"
    name: str | None = None
    command: str | None = None
    url: str | None = None
    transport: Literal["stdio", "sse", "streamable-http"] | None = "streamable-http"
    auth_type: Literal["api_key", "oauth2", "custom_headers", "none", "sso_user"] | None = "none"
    api_key: str | None = None
    use_secrets_manager: bool | None = False
    client_id: str | None = None
    client_secret: str | None = None
    headers: dict[str, Any] | None = Field(default_factory=dict)
    env_vars: dict[str, Any] | None = Field(default_factory=dict)
    allowed_tools: list[str] | None = Field(default_factory=list)
    additional_scopes: list[str] | None = Field(default_factory=list)
    share_user_token_across_other_agents: bool | None = True
    sso_token: Literal["access", "id", "exchange"] | None = "access"
    sso_audience: str | None = None


class CreateTaskBody(_Strict):
    """`POST /agent-execution/{agent_id}`: every key the SDK sends, all optional with its defaults."""

    id: str | None = None
    input: ExecutionInput = Field(default_factory=ExecutionInput)
    payload_extension: dict[str, Any] | None = None
    source: str | None = None
    worker_id: str | None = None
    output_format: OutputFormat | None = None
    output_schema: dict[str, Any] | None = None
    run_locally: bool = False
    events_streaming: bool = False
    additional_context: str | None = None
    instructions_override: str | None = None
    test_run_node_id: str | None = None
    user_oidc_token: str | None = None
    expected_output: str | None = None
    mcp_servers: list[McpServer] | None = Field(default_factory=list)
    triggering_agent_id: str | None = None
    title: str | None = None
    think_mode: ThinkMode = "default"
    disable_attachment_injection: bool = False
    user_tokens: dict[str, Any] | None = None
    return_metrics: bool = False
    tool_call_limit: int | None = None
    llm_model_provider: str | None = None
    llm_model_name: str | None = None
    llm_reasoning_effort: ReasoningEffort | None = None
    harness_cli: str | None = None
    permission_mode: str | None = None


class Tokens(_Strict):
    """Token usage as a client reports it; `total_tokens` is recomputed, never trusted."""

    completion_tokens: int = 0
    prompt_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


class UpdateTaskBody(_Strict):
    """`PATCH /agent-execution/{task_id}/update`: either the few keys of `Tasks.aupdate` or a whole Task.

    Only the fields a client may change are read; identity fields (`id`, `agent_id`, `created_at`, ...) in a
    whole-Task body are ignored.
    """

    status: TaskStatus | None = None
    internal_status: str | None = None
    result: str | None = None
    source: str | None = None
    last_executed_node_id: str | None = None
    payload_extension: dict[str, Any] | None = None
    tool_call_payload_extension: dict[str, Any] | None = None
    title: str | None = None
    expected_output: str | None = None
    triggering_agent_id: str | None = None
    mcp_servers: list[McpServer] | None = None
    additional_context: str | None = None
    instructions_override: str | None = None
    tokens: Tokens | None = None
    used_tools: list[str] | None = None
    duration: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _unwrap_head_quirk(cls, data: Any) -> Any:
        # SDK 2.0.266 sends `[null]` / `[[]]` for these four keys when a Task JSON omitted them.
        if not isinstance(data, dict):
            return data
        fixed = dict(data)
        for key in ("expected_output", "triggering_agent_id", "title", "mcp_servers"):
            value = fixed.get(key)
            if isinstance(value, list) and len(value) == 1 and (value[0] is None or value[0] == []):
                fixed[key] = value[0]
        return fixed

    def changes(self) -> dict[str, Any]:
        """The Task fields this body sets, keyed by their Task name, as JSON values."""
        changed = self.model_dump(mode="json", exclude_unset=True)
        # `Tasks.aupdate` sends `tool_call_payload_extension`; the Task field is `payload_extension`.
        if "tool_call_payload_extension" in changed:
            changed["payload_extension"] = changed.pop("tool_call_payload_extension")
        if "mcp_servers" in changed and changed["mcp_servers"] is None:
            changed["mcp_servers"] = []
        if self.tokens is not None:
            # Nested models are dumped "unset-excluded" too; a Tokens object is always whole on a Task.
            tokens = self.tokens.model_dump()
            tokens["total_tokens"] = self.tokens.completion_tokens + self.tokens.prompt_tokens
            changed["tokens"] = tokens
        return changed


def parse_body(model: type[_M], raw: bytes) -> _M:
    """Validate a JSON request body: malformed JSON is a 400, a well-formed body of the wrong shape a 422."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if any(error["type"] == "json_invalid" for error in errors):
            raise ApiError(400, f"malformed JSON body: {errors[0]['msg']}") from exc
        raise ApiError(422, _describe(errors)) from exc


def _describe(errors: list[Any]) -> str:
    parts = []
    for error in errors[:5]:
        location = ".".join(str(part) for part in error["loc"]) or "body"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)

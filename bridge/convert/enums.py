"""One table per enum between proto values and the platform's wire strings; each reverse is derived.

Unknown wire strings read as the enum's `*_UNSPECIFIED` (0); callers keep the raw string beside it
(`unrecognized_enum_values`, `type_name`) so values the platform adds later are never lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Generic, TypeVar

from xpander.bridge.v1 import events_pb2, task_pb2

if TYPE_CHECKING:
    # Only the stubs name the generic wrapper; at run time each proto enum is an EnumTypeWrapper.
    from google.protobuf.internal.enum_type_wrapper import _EnumTypeWrapper

__all__ = [
    "ATTACHMENT_KIND",
    "AUTH_EVENT_TYPE",
    "LLM_REASONING_EFFORT",
    "MCP_SERVER_AUTH_TYPE",
    "MCP_SERVER_SSO_TOKEN_MODE",
    "MCP_SERVER_TRANSPORT",
    "MCP_SERVER_TYPE",
    "OUTPUT_FORMAT",
    "PRINCIPAL_KIND",
    "TASK_COMPACTIZATION_TYPE",
    "TASK_EVENT_TYPE",
    "TASK_STATUS",
    "THINK_MODE",
    "EnumTable",
]

E = TypeVar("E", bound=int)


class EnumTable(Generic[E]):
    """A proto enum's wire strings: `wire[value]` and its reverse `by_wire[string]`."""

    __slots__ = ("by_wire", "enum_name", "wire")

    def __init__(self, enum: _EnumTypeWrapper[E], wire: Mapping[E, str]) -> None:
        self.enum_name = enum.DESCRIPTOR.name
        self.wire: dict[E, str] = dict(wire)
        self.by_wire: dict[str, E] = {string: value for value, string in self.wire.items()}
        if len(self.by_wire) != len(self.wire):
            raise ValueError(f"{self.enum_name}: two values share a wire string")


_T = task_pb2
_V = events_pb2

TASK_STATUS = EnumTable(
    _T.TaskStatus,
    {
        _T.TASK_STATUS_PENDING: "pending",
        _T.TASK_STATUS_EXECUTING: "executing",
        _T.TASK_STATUS_PAUSED: "paused",
        _T.TASK_STATUS_ERROR: "error",
        _T.TASK_STATUS_FAILED: "failed",
        _T.TASK_STATUS_COMPLETED: "completed",
        _T.TASK_STATUS_STOPPED: "stopped",
    },
)

OUTPUT_FORMAT = EnumTable(
    _T.OutputFormat,
    {
        _T.OUTPUT_FORMAT_TEXT: "text",
        _T.OUTPUT_FORMAT_MARKDOWN: "markdown",
        _T.OUTPUT_FORMAT_JSON: "json",
        _T.OUTPUT_FORMAT_VOICE: "voice",
    },
)

THINK_MODE = EnumTable(
    _T.ThinkMode,
    {_T.THINK_MODE_DEFAULT: "default", _T.THINK_MODE_HARDER: "harder"},
)

LLM_REASONING_EFFORT = EnumTable(
    _T.LLMReasoningEffort,
    {
        _T.LLM_REASONING_EFFORT_LOW: "low",
        _T.LLM_REASONING_EFFORT_MEDIUM: "medium",
        _T.LLM_REASONING_EFFORT_HIGH: "high",
        _T.LLM_REASONING_EFFORT_XHIGH: "xhigh",
    },
)

MCP_SERVER_TYPE = EnumTable(
    _T.MCPServerType,
    {_T.MCP_SERVER_TYPE_LOCAL: "local", _T.MCP_SERVER_TYPE_REMOTE: "remote"},
)

MCP_SERVER_TRANSPORT = EnumTable(
    _T.MCPServerTransport,
    {
        _T.MCP_SERVER_TRANSPORT_STDIO: "stdio",
        _T.MCP_SERVER_TRANSPORT_SSE: "sse",
        _T.MCP_SERVER_TRANSPORT_STREAMABLE_HTTP: "streamable-http",
    },
)

MCP_SERVER_AUTH_TYPE = EnumTable(
    _T.MCPServerAuthType,
    {
        _T.MCP_SERVER_AUTH_TYPE_API_KEY: "api_key",
        _T.MCP_SERVER_AUTH_TYPE_OAUTH2: "oauth2",
        _T.MCP_SERVER_AUTH_TYPE_CUSTOM_HEADERS: "custom_headers",
        _T.MCP_SERVER_AUTH_TYPE_NONE: "none",
        _T.MCP_SERVER_AUTH_TYPE_SSO_USER: "sso_user",
    },
)

MCP_SERVER_SSO_TOKEN_MODE = EnumTable(
    _T.MCPServerSSOTokenMode,
    {
        _T.MCP_SERVER_SSO_TOKEN_MODE_ACCESS: "access",
        _T.MCP_SERVER_SSO_TOKEN_MODE_ID: "id",
        _T.MCP_SERVER_SSO_TOKEN_MODE_EXCHANGE: "exchange",
    },
)

ATTACHMENT_KIND = EnumTable(
    _T.AttachmentKind,
    {
        _T.ATTACHMENT_KIND_IMAGE: "image",
        _T.ATTACHMENT_KIND_PDF: "pdf",
        _T.ATTACHMENT_KIND_DOCUMENT: "document",
        _T.ATTACHMENT_KIND_TEXT: "text",
        _T.ATTACHMENT_KIND_AUDIO: "audio",
        _T.ATTACHMENT_KIND_VIDEO: "video",
        _T.ATTACHMENT_KIND_ARCHIVE: "archive",
        _T.ATTACHMENT_KIND_UNKNOWN: "unknown",
    },
)

PRINCIPAL_KIND = EnumTable(
    _T.PrincipalKind,
    {
        _T.PRINCIPAL_KIND_USER: "user",
        _T.PRINCIPAL_KIND_SLACK: "slack",
        _T.PRINCIPAL_KIND_API_KEY: "api_key",
        _T.PRINCIPAL_KIND_SYSTEM: "system",
        _T.PRINCIPAL_KIND_ANONYMOUS: "anonymous",
    },
)

# TASK_EVENT_TYPE_HEARTBEAT is absent on purpose: the bridge makes heartbeats, the platform never sends one.
TASK_EVENT_TYPE = EnumTable(
    _V.TaskEventType,
    {
        _V.TASK_EVENT_TYPE_CONNECTED: "connected",
        _V.TASK_EVENT_TYPE_TASK_CREATED: "task_created",
        _V.TASK_EVENT_TYPE_TASK_UPDATED: "task_updated",
        _V.TASK_EVENT_TYPE_TASK_FINISHED: "task_finished",
        _V.TASK_EVENT_TYPE_CHUNK: "chunk",
        _V.TASK_EVENT_TYPE_AUTH_EVENT: "auth_event",
        _V.TASK_EVENT_TYPE_TOOL_CALL_REQUEST: "tool_call_request",
        _V.TASK_EVENT_TYPE_TOOL_CALL_RESULT: "tool_call_result",
        _V.TASK_EVENT_TYPE_SUB_AGENT_TRIGGER: "sub_agent_trigger",
        _V.TASK_EVENT_TYPE_THINK: "think",
        _V.TASK_EVENT_TYPE_ANALYZE: "analyze",
        _V.TASK_EVENT_TYPE_PLAN_UPDATED: "plan_updated",
        _V.TASK_EVENT_TYPE_TASK_COMPACTIZATION: "task_compactization",
        _V.TASK_EVENT_TYPE_CONTEXT_STATUS: "context_status",
        _V.TASK_EVENT_TYPE_AGENT_GATEWAY_DECISION: "agent_gateway_decision",
        _V.TASK_EVENT_TYPE_PROCESS_STATE_CHANGED: "process_state_changed",
        _V.TASK_EVENT_TYPE_PROCESS_UPDATE: "process_update",
        _V.TASK_EVENT_TYPE_GATEWAY_STEER_APPLIED: "gateway_steer_applied",
        _V.TASK_EVENT_TYPE_ASK_USER_QUESTIONS: "ask_user_questions",
        _V.TASK_EVENT_TYPE_SUB_TASK_CREATED: "sub_task_created",
        _V.TASK_EVENT_TYPE_SUB_TASK_UPDATED: "sub_task_updated",
        _V.TASK_EVENT_TYPE_SUB_TASK_FINISHED: "sub_task_finished",
        _V.TASK_EVENT_TYPE_INVITE_MEMBER: "invite_member",
        _V.TASK_EVENT_TYPE_MEMBER_INVITED: "member_invited",
        _V.TASK_EVENT_TYPE_ASK_FOR_SECRET: "ask_for_secret",
        _V.TASK_EVENT_TYPE_SECRET_SAVED: "secret_saved",
        _V.TASK_EVENT_TYPE_LIVE_SURFACE_CREATED: "live_surface_created",
        _V.TASK_EVENT_TYPE_INLINE_CARD: "inline_card",
    },
)

AUTH_EVENT_TYPE = EnumTable(
    _V.AuthEventType,
    {
        _V.AUTH_EVENT_TYPE_NOT_SUPPORTED: "not_supported",
        _V.AUTH_EVENT_TYPE_LOGIN_REQUIRED: "login_required",
        _V.AUTH_EVENT_TYPE_TOKEN_ISSUE: "token_issue",
        _V.AUTH_EVENT_TYPE_TOKEN_READY: "token_ready",
    },
)

TASK_COMPACTIZATION_TYPE = EnumTable(
    _V.TaskCompactizationType,
    {
        _V.TASK_COMPACTIZATION_TYPE_RETRY: "retry",
        _V.TASK_COMPACTIZATION_TYPE_SUMMARIZATION: "summarization",
        _V.TASK_COMPACTIZATION_TYPE_COMPACTION_STARTED: "compaction_started",
        _V.TASK_COMPACTIZATION_TYPE_COMPACTION_PROGRESS: "compaction_progress",
        _V.TASK_COMPACTIZATION_TYPE_MANUAL_COMPACTION: "manual_compaction",
        _V.TASK_COMPACTIZATION_TYPE_EMERGENCY_COMPACTION: "emergency_compaction",
        _V.TASK_COMPACTIZATION_TYPE_PRE_RETRY_COMPACTION: "pre_retry_compaction",
        _V.TASK_COMPACTIZATION_TYPE_COMPACTION_ERROR: "compaction_error",
    },
)

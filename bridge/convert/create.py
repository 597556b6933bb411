"""CreateTaskRequest -> the platform's create-task body and headers, validated."""

from __future__ import annotations

import functools
import json
from typing import Any, Literal, NamedTuple, TypeVar

from google.protobuf import struct_pb2
from jsonschema.exceptions import SchemaError
from jsonschema.validators import Draft202012Validator, validator_for

from bridge.convert.enums import (
    ATTACHMENT_KIND,
    LLM_REASONING_EFFORT,
    MCP_SERVER_AUTH_TYPE,
    MCP_SERVER_SSO_TOKEN_MODE,
    MCP_SERVER_TRANSPORT,
    MCP_SERVER_TYPE,
    OUTPUT_FORMAT,
    PRINCIPAL_KIND,
    THINK_MODE,
    EnumTable,
)
from bridge.convert.jsonvalue import struct_to_json
from bridge.convert.validation import email_problem, id_problem, invalid_argument, url_problem
from bridge.errors import FieldViolation
from xpander.bridge.v1 import task_pb2, task_service_pb2

__all__ = ["HARNESS_CLIS", "CreateTaskCall", "create_task_to_platform"]

HARNESS_CLIS = frozenset({"claude-code", "codex", "opencode", "xpander"})
"""Harness names the platform accepts (its HarnessCli enum)."""

_DEFAULT_SOURCE = "sdk"
_E = TypeVar("_E", bound=int)


class CreateTaskCall(NamedTuple):
    """What `POST agent-execution/{agent_id}` sends: the JSON body and the extra headers."""

    body: dict[str, Any]
    headers: dict[str, str]


class _Violations:
    """Collects every problem of a request, so the caller learns all of them from one reply."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, problem: str | None) -> None:
        if problem is not None:
            self.items.append(FieldViolation(field, problem))


def create_task_to_platform(request: task_service_pb2.CreateTaskRequest) -> CreateTaskCall:
    """The create body (every key present, unset ones as explicit nulls), plus `x-agent-version` when set.

    Raises InvalidArgument listing every invalid field (e.g. `user_details.email`, `mcp_servers[1].url`).
    """
    violations = _Violations()
    has = request.HasField
    violations.add("agent_id", id_problem(request.agent_id))
    task_id = request.existing_task_id if has("existing_task_id") else None
    if task_id is not None:
        violations.add("existing_task_id", id_problem(task_id))
    headers = _headers(violations, request)
    output_format = _optional_enum(violations, "output_format", OUTPUT_FORMAT, request.output_format)
    output_schema = _output_schema(violations, request)
    tool_call_limit = _tool_call_limit(violations, request)
    think_mode = _think_mode(violations, request)
    body: dict[str, Any] = {
        "id": task_id,
        "input": _input(violations, request),
        "payload_extension": _optional_struct(violations, request, "tool_call_payload_extension"),
        "source": request.source if has("source") else _DEFAULT_SOURCE,
        "worker_id": request.worker_id if has("worker_id") else None,
        "output_format": output_format,
        "output_schema": output_schema,
        "run_locally": request.run_locally,
        "events_streaming": request.events_streaming,
        "additional_context": request.additional_context if has("additional_context") else None,
        "instructions_override": request.instructions_override if has("instructions_override") else None,
        "test_run_node_id": request.test_run_node_id if has("test_run_node_id") else None,
        "user_oidc_token": request.user_oidc_token if has("user_oidc_token") else None,
        "expected_output": request.expected_output if has("expected_output") else None,
        "mcp_servers": [
            _mcp_server(violations, f"mcp_servers[{index}]", server)
            for index, server in enumerate(request.mcp_servers)
        ],
        "triggering_agent_id": request.triggering_agent_id if has("triggering_agent_id") else None,
        "title": request.title if has("title") else None,
        "think_mode": think_mode,
        "disable_attachment_injection": request.disable_attachment_injection,
        "tool_call_limit": tool_call_limit,
        "user_tokens": _optional_struct(violations, request, "user_tokens"),
        "return_metrics": request.return_metrics,
        "llm_model_provider": request.llm_model_provider if has("llm_model_provider") else None,
        "llm_model_name": request.llm_model_name if has("llm_model_name") else None,
        "llm_reasoning_effort": _optional_enum(
            violations, "llm_reasoning_effort", LLM_REASONING_EFFORT, request.llm_reasoning_effort
        ),
        "harness_cli": _harness_cli(violations, request),
        "permission_mode": _permission_mode(request),
    }
    if violations.items:
        raise invalid_argument(violations.items)
    return CreateTaskCall(body, headers)


def _headers(violations: _Violations, request: task_service_pb2.CreateTaskRequest) -> dict[str, str]:
    if not (request.HasField("agent_version") and request.agent_version):
        return {}
    version = request.agent_version
    # It travels as an HTTP header value, which must be printable ASCII.
    if not (version.isascii() and version.isprintable()):
        violations.add("agent_version", "must be printable ASCII")
    return {"x-agent-version": version}


def _output_schema(
    violations: _Violations, request: task_service_pb2.CreateTaskRequest
) -> dict[str, Any] | None:
    if not request.HasField("output_schema"):
        return None
    schema = _json_object(violations, "output_schema", request.output_schema)
    if schema is not None:
        violations.add("output_schema", _schema_problem(schema))
    if request.output_format != task_pb2.OUTPUT_FORMAT_JSON:
        violations.add("output_schema", "is only accepted with output_format OUTPUT_FORMAT_JSON")
    return schema


def _tool_call_limit(violations: _Violations, request: task_service_pb2.CreateTaskRequest) -> int | None:
    if not request.HasField("tool_call_limit"):
        return None
    if request.tool_call_limit < 0:
        violations.add("tool_call_limit", "must be at least 0")
    return request.tool_call_limit


def _think_mode(violations: _Violations, request: task_service_pb2.CreateTaskRequest) -> str | None:
    think_mode = THINK_MODE.wire.get(request.think_mode or task_pb2.THINK_MODE_DEFAULT)
    if think_mode is None:
        violations.add("think_mode", f"has unknown value {request.think_mode}")
    return think_mode


def _input(violations: _Violations, request: task_service_pb2.CreateTaskRequest) -> dict[str, Any]:
    for index, url in enumerate(request.file_urls):
        violations.add(f"file_urls[{index}]", url_problem(url))
    result: dict[str, Any] = {
        "text": request.prompt,
        "files": list(request.file_urls),
        "user": _user(violations, request.user_details) if request.HasField("user_details") else None,
    }
    # The SDK leaves both keys out of the body when they are empty; older platforms reject them.
    if request.attachments:
        result["attachments"] = [
            _attachment(violations, f"attachments[{index}]", attachment)
            for index, attachment in enumerate(request.attachments)
        ]
    if request.HasField("principal"):
        result["principal"] = _principal(violations, request.principal)
    return result


def _user(violations: _Violations, user: task_pb2.User) -> dict[str, Any]:
    violations.add("user_details.email", email_problem(user.email))
    has = user.HasField
    attributes: dict[str, Any] | None = None
    if has("additional_attributes"):
        attributes = _json_object(
            violations, "user_details.additional_attributes", user.additional_attributes
        )
    return {
        "id": user.id if has("id") else None,
        "first_name": user.first_name if has("first_name") else None,
        "last_name": user.last_name if has("last_name") else None,
        "email": user.email,
        "additional_attributes": attributes,
        "timezone": user.timezone if has("timezone") else None,
    }


def _attachment(violations: _Violations, field: str, attachment: task_pb2.Attachment) -> dict[str, Any]:
    violations.add(f"{field}.url", url_problem(attachment.url))
    has = attachment.HasField
    return {
        "url": attachment.url,
        "name": attachment.name if has("name") else None,
        "mime": attachment.mime if has("mime") else None,
        "size": attachment.size if has("size") else None,
        "kind": _optional_enum(violations, f"{field}.kind", ATTACHMENT_KIND, attachment.kind),
        "sha256": attachment.sha256 if has("sha256") else None,
        "expires_at": attachment.expires_at if has("expires_at") else None,
        "source": attachment.source if has("source") else None,
        "transcript": attachment.transcript if has("transcript") else None,
    }


def _principal(violations: _Violations, principal: task_pb2.Principal) -> dict[str, Any]:
    kind = PRINCIPAL_KIND.wire.get(principal.kind)
    if kind is None:
        violations.add("principal.kind", "is required" if principal.kind == 0 else "has an unknown value")
    # The SDK trims the id before checking it, and sends it trimmed.
    principal_id = principal.id.strip()
    if not principal_id:
        violations.add("principal.id", "is required")
    elif ":" in principal_id or any(char.isspace() for char in principal_id):
        violations.add("principal.id", "must not contain ':' or white space")
    has = principal.HasField
    return {
        "kind": kind,
        "id": principal_id,
        "email": principal.email if has("email") else None,
        "display_name": principal.display_name if has("display_name") else None,
    }


def _mcp_server(violations: _Violations, field: str, server: task_pb2.MCPServerDetails) -> dict[str, Any]:
    """Every key of an MCP server, with the SDK's defaults and its type/transport coercion."""
    has = server.HasField
    server_type = server.type or task_pb2.MCP_SERVER_TYPE_REMOTE
    transport = server.transport
    # The SDK coerces on construction: a local server always talks stdio; a remote one never does.
    if server_type == task_pb2.MCP_SERVER_TYPE_LOCAL:
        transport = task_pb2.MCP_SERVER_TRANSPORT_STDIO
        if not (has("command") and server.command.strip()):
            violations.add(f"{field}.command", "is required for a local server")
    elif server_type == task_pb2.MCP_SERVER_TYPE_REMOTE:
        if transport in (task_pb2.MCP_SERVER_TRANSPORT_UNSPECIFIED, task_pb2.MCP_SERVER_TRANSPORT_STDIO):
            transport = task_pb2.MCP_SERVER_TRANSPORT_STREAMABLE_HTTP
        violations.add(
            f"{field}.url", url_problem(server.url) if has("url") else "is required for a remote server"
        )
    auth_type = server.auth_type or task_pb2.MCP_SERVER_AUTH_TYPE_NONE
    sso_token = server.sso_token or task_pb2.MCP_SERVER_SSO_TOKEN_MODE_ACCESS
    return {
        "id": server.id if has("id") else None,
        "type": _required_enum(violations, f"{field}.type", MCP_SERVER_TYPE, server_type),
        "name": server.name if has("name") else None,
        "command": server.command if has("command") else None,
        "url": server.url if has("url") else None,
        "transport": _required_enum(violations, f"{field}.transport", MCP_SERVER_TRANSPORT, transport),
        "auth_type": _required_enum(violations, f"{field}.auth_type", MCP_SERVER_AUTH_TYPE, auth_type),
        "api_key": server.api_key if has("api_key") else None,
        "use_secrets_manager": server.use_secrets_manager if has("use_secrets_manager") else False,
        "client_id": server.client_id if has("client_id") else None,
        "client_secret": server.client_secret if has("client_secret") else None,
        "headers": dict(server.headers),
        "env_vars": dict(server.env_vars),
        "allowed_tools": list(server.allowed_tools),
        "additional_scopes": list(server.additional_scopes),
        "share_user_token_across_other_agents": (
            server.share_user_token_across_other_agents
            if has("share_user_token_across_other_agents")
            else True
        ),
        "sso_token": _required_enum(violations, f"{field}.sso_token", MCP_SERVER_SSO_TOKEN_MODE, sso_token),
        "sso_audience": server.sso_audience if has("sso_audience") else None,
    }


def _harness_cli(violations: _Violations, request: task_service_pb2.CreateTaskRequest) -> str | None:
    if not request.HasField("harness_cli"):
        return None
    name = request.harness_cli.strip().lower()
    if not name:
        return None
    # The SDK silently turns an unknown harness into null, so the task would run on a harness the caller
    # did not ask for; the bridge refuses instead.
    if name not in HARNESS_CLIS:
        violations.add("harness_cli", "must be one of " + ", ".join(sorted(HARNESS_CLIS)))
    return name


def _permission_mode(request: task_service_pb2.CreateTaskRequest) -> str | None:
    if not request.HasField("permission_mode"):
        return None
    # Unknown modes pass through as the SDK does: the platform adds modes without a client release.
    return request.permission_mode.strip().lower() or None


def _optional_enum(violations: _Violations, field: str, table: EnumTable[_E], value: _E) -> str | None:
    """The wire string of an enum whose *_UNSPECIFIED means null."""
    if value == 0:
        return None
    return _required_enum(violations, field, table, value)


def _required_enum(violations: _Violations, field: str, table: EnumTable[_E], value: _E) -> str | None:
    string = table.wire.get(value)
    if string is None:
        violations.add(field, f"has unknown value {int(value)}")
    return string


def _optional_struct(
    violations: _Violations,
    request: task_service_pb2.CreateTaskRequest,
    field: Literal["tool_call_payload_extension", "user_tokens"],
) -> dict[str, Any] | None:
    if not request.HasField(field):
        return None
    struct: struct_pb2.Struct = getattr(request, field)
    return _json_object(violations, field, struct)


def _json_object(violations: _Violations, field: str, struct: struct_pb2.Struct) -> dict[str, Any] | None:
    try:
        return struct_to_json(struct)
    except ValueError as error:
        violations.add(field, str(error))
        return None


def _schema_problem(schema: dict[str, Any]) -> str | None:
    # Checking against the meta-schema takes about half a millisecond, and callers tend to send the same
    # schema with every task: remember verdicts by the schema's canonical text.
    return _checked_schema_problem(json.dumps(schema, sort_keys=True))


@functools.lru_cache(maxsize=256)
def _checked_schema_problem(canonical: str) -> str | None:
    schema = json.loads(canonical)
    dialect = schema.get("$schema")
    if dialect is not None and not isinstance(dialect, str):
        return "is not a valid JSON Schema: '$schema' must be a string"
    # An explicit default keeps an unknown `$schema` URI from warning; such schemas are checked as 2020-12.
    validator = validator_for(schema, default=Draft202012Validator)
    try:
        validator.check_schema(schema)
    except SchemaError as error:
        location = "/".join(str(part) for part in error.absolute_path)
        where = f" at '{location}'" if location else ""
        return f"is not a valid JSON Schema{where}: {error.message}"
    return None

"""CreateTaskRequest -> the platform's create body: goldens, defaults and validation."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import struct_pb2
from jsonschema import Draft202012Validator

from bridge.convert import CreateTaskCall, create_task_to_platform
from bridge.errors import InvalidArgument
from xpander.bridge.v1 import task_pb2, task_service_pb2

GOLDEN = Path(__file__).parent / "golden"
BODY_SCHEMA = Draft202012Validator(json.loads((GOLDEN / "create_body.schema.json").read_text()))

Request = task_service_pb2.CreateTaskRequest


def golden(name: str) -> Any:
    return json.loads((GOLDEN / name).read_text())


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(value)
    return result


def violations(request: Request) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        create_task_to_platform(request)
    return {v.field: v.description for v in caught.value.field_violations}


def full_request() -> Request:
    """Every field of CreateTaskRequest set to something other than its default."""
    return Request(
        agent_id="a1",
        prompt="Summarise the report",
        existing_task_id="t-existing",
        file_urls=["https://example.com/r.pdf", "http://files.example.org:8080/a/b.txt?x=1"],
        user_details=task_pb2.User(
            id="u1",
            email="ada@example.com",
            first_name="Ada",
            last_name="Lovelace",
            timezone="Europe/London",
            additional_attributes=struct(
                {"team": "analytics", "seniority": 3, "tags": ["a", "b"], "vip": True, "manager": None}
            ),
        ),
        agent_version="3",
        tool_call_payload_extension=struct({"tenant": "acme", "limits": {"rows": 100}}),
        source="grpc",
        worker_id="w-7",
        run_locally=True,
        output_format=task_pb2.OUTPUT_FORMAT_JSON,
        output_schema=struct(
            {
                "type": "object",
                "properties": {"summary": {"type": "string", "maxLength": 500}},
                "required": ["summary"],
            }
        ),
        events_streaming=True,
        additional_context="Quarter three.",
        instructions_override="Be brief.",
        test_run_node_id="node-1",
        user_oidc_token="eyJhbGciOi.fake.token",
        expected_output="A one-paragraph summary.",
        mcp_servers=[
            task_pb2.MCPServerDetails(
                id="reg-1",
                type=task_pb2.MCP_SERVER_TYPE_REMOTE,
                name="search",
                url="https://mcp.example.com/mcp",
                transport=task_pb2.MCP_SERVER_TRANSPORT_SSE,
                auth_type=task_pb2.MCP_SERVER_AUTH_TYPE_API_KEY,
                api_key="k-123",
                use_secrets_manager=True,
                client_id="cid",
                client_secret="csecret",
                headers={"x-team": "analytics"},
                allowed_tools=["search", "fetch"],
                additional_scopes=["read"],
                share_user_token_across_other_agents=False,
                sso_token=task_pb2.MCP_SERVER_SSO_TOKEN_MODE_EXCHANGE,
                sso_audience="api://search",
            ),
            task_pb2.MCPServerDetails(
                type=task_pb2.MCP_SERVER_TYPE_LOCAL,
                command="npx -y @modelcontextprotocol/server-filesystem /tmp",
                env_vars={"ROOT": "/tmp"},
            ),
        ],
        triggering_agent_id="a-parent",
        title="Q3 summary",
        think_mode=task_pb2.THINK_MODE_HARDER,
        disable_attachment_injection=True,
        return_metrics=True,
        user_tokens=struct({"github": "gho_fake"}),
        tool_call_limit=25,
        llm_model_provider="anthropic",
        llm_model_name="claude-sonnet-4",
        llm_reasoning_effort=task_pb2.LLM_REASONING_EFFORT_XHIGH,
        harness_cli="  Claude-Code ",
        permission_mode=" GATED",
        attachments=[
            task_pb2.Attachment(
                url="https://cdn.example.com/q3.pdf",
                name="q3.pdf",
                mime="application/pdf",
                size=1048576,
                kind=task_pb2.ATTACHMENT_KIND_PDF,
                sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                expires_at="2026-12-01T00:00:00Z",
                source="slack",
                transcript="no audio",
            ),
            task_pb2.Attachment(url="https://cdn.example.com/x"),
        ],
        principal=task_pb2.Principal(
            kind=task_pb2.PRINCIPAL_KIND_SLACK, id=" U024BE7LH ", email="ada@example.com", display_name="Ada"
        ),
    )


def test_the_example_request_of_section_2_6_is_produced_exactly() -> None:
    request = Request(
        agent_id="a1",
        prompt="Summarise the report",
        file_urls=["https://example.com/r.pdf"],
        user_details=task_pb2.User(id="u1", email="u@example.com"),
        output_format=task_pb2.OUTPUT_FORMAT_MARKDOWN,
        events_streaming=True,
    )
    call = create_task_to_platform(request)
    expected = golden("create_body_example.json")
    assert call == CreateTaskCall(expected, {})
    # The SDK serialises in this order; keeping it makes captured bodies diff cleanly.
    assert list(call.body) == list(expected)
    assert list(call.body["input"]["user"]) == list(expected["input"]["user"])


def test_every_field_of_the_request_reaches_the_body_or_the_headers() -> None:
    request = full_request()
    assert len(request.ListFields()) == len(Request.DESCRIPTOR.fields), "full_request() must set every field"
    call = create_task_to_platform(request)
    assert call.body == golden("create_body_full.json")
    assert call.headers == {"x-agent-version": "3"}
    BODY_SCHEMA.validate(call.body)


def test_an_empty_request_sends_every_key_with_the_sdk_defaults() -> None:
    call = create_task_to_platform(Request(agent_id="a1"))
    assert call.headers == {}
    assert call.body == {
        "id": None,
        "input": {"text": "", "files": [], "user": None},
        "payload_extension": None,
        "source": "sdk",
        "worker_id": None,
        "output_format": None,
        "output_schema": None,
        "run_locally": False,
        "events_streaming": False,
        "additional_context": None,
        "instructions_override": None,
        "test_run_node_id": None,
        "user_oidc_token": None,
        "expected_output": None,
        "mcp_servers": [],
        "triggering_agent_id": None,
        "title": None,
        "think_mode": "default",
        "disable_attachment_injection": False,
        "tool_call_limit": None,
        "user_tokens": None,
        "return_metrics": False,
        "llm_model_provider": None,
        "llm_model_name": None,
        "llm_reasoning_effort": None,
        "harness_cli": None,
        "permission_mode": None,
    }
    BODY_SCHEMA.validate(call.body)


def test_set_but_empty_optionals_are_sent_as_given_not_as_null() -> None:
    body = create_task_to_platform(
        Request(agent_id="a1", source="", title="", tool_call_limit=0, user_tokens=struct({}))
    ).body
    assert (body["source"], body["title"], body["tool_call_limit"], body["user_tokens"]) == ("", "", 0, {})


@pytest.mark.parametrize(
    ("output_format", "wire"),
    [
        (task_pb2.OUTPUT_FORMAT_UNSPECIFIED, None),
        (task_pb2.OUTPUT_FORMAT_TEXT, "text"),
        (task_pb2.OUTPUT_FORMAT_MARKDOWN, "markdown"),
        (task_pb2.OUTPUT_FORMAT_JSON, "json"),
        (task_pb2.OUTPUT_FORMAT_VOICE, "voice"),
    ],
)
def test_output_format(output_format: task_pb2.OutputFormat.ValueType, wire: str | None) -> None:
    assert (
        create_task_to_platform(Request(agent_id="a", output_format=output_format)).body["output_format"]
        == wire
    )


@pytest.mark.parametrize(
    ("think_mode", "wire"),
    [
        (task_pb2.THINK_MODE_UNSPECIFIED, "default"),
        (task_pb2.THINK_MODE_DEFAULT, "default"),
        (task_pb2.THINK_MODE_HARDER, "harder"),
    ],
)
def test_think_mode_is_never_null(think_mode: task_pb2.ThinkMode.ValueType, wire: str) -> None:
    assert create_task_to_platform(Request(agent_id="a", think_mode=think_mode)).body["think_mode"] == wire


@pytest.mark.parametrize(
    ("effort", "wire"),
    [
        (task_pb2.LLM_REASONING_EFFORT_UNSPECIFIED, None),
        (task_pb2.LLM_REASONING_EFFORT_LOW, "low"),
        (task_pb2.LLM_REASONING_EFFORT_MEDIUM, "medium"),
        (task_pb2.LLM_REASONING_EFFORT_HIGH, "high"),
        (task_pb2.LLM_REASONING_EFFORT_XHIGH, "xhigh"),
    ],
)
def test_llm_reasoning_effort(effort: task_pb2.LLMReasoningEffort.ValueType, wire: str | None) -> None:
    body = create_task_to_platform(Request(agent_id="a", llm_reasoning_effort=effort)).body
    assert body["llm_reasoning_effort"] == wire


@pytest.mark.parametrize(
    ("kind", "wire"),
    [
        (task_pb2.ATTACHMENT_KIND_UNSPECIFIED, None),
        (task_pb2.ATTACHMENT_KIND_IMAGE, "image"),
        (task_pb2.ATTACHMENT_KIND_PDF, "pdf"),
        (task_pb2.ATTACHMENT_KIND_DOCUMENT, "document"),
        (task_pb2.ATTACHMENT_KIND_TEXT, "text"),
        (task_pb2.ATTACHMENT_KIND_AUDIO, "audio"),
        (task_pb2.ATTACHMENT_KIND_VIDEO, "video"),
        (task_pb2.ATTACHMENT_KIND_ARCHIVE, "archive"),
        (task_pb2.ATTACHMENT_KIND_UNKNOWN, "unknown"),
    ],
)
def test_attachment_kind(kind: task_pb2.AttachmentKind.ValueType, wire: str | None) -> None:
    request = Request(agent_id="a", attachments=[task_pb2.Attachment(url="https://x.example/f", kind=kind)])
    assert create_task_to_platform(request).body["input"]["attachments"][0]["kind"] == wire


@pytest.mark.parametrize(
    ("kind", "wire"),
    [
        (task_pb2.PRINCIPAL_KIND_USER, "user"),
        (task_pb2.PRINCIPAL_KIND_SLACK, "slack"),
        (task_pb2.PRINCIPAL_KIND_API_KEY, "api_key"),
        (task_pb2.PRINCIPAL_KIND_SYSTEM, "system"),
        (task_pb2.PRINCIPAL_KIND_ANONYMOUS, "anonymous"),
    ],
)
def test_principal_kind(kind: task_pb2.PrincipalKind.ValueType, wire: str) -> None:
    request = Request(agent_id="a", principal=task_pb2.Principal(kind=kind, id="p1"))
    assert create_task_to_platform(request).body["input"]["principal"] == {
        "kind": wire,
        "id": "p1",
        "email": None,
        "display_name": None,
    }


def test_attachments_and_principal_are_left_out_when_unset() -> None:
    body = create_task_to_platform(Request(agent_id="a")).body
    assert "attachments" not in body["input"]
    assert "principal" not in body["input"]


def test_a_user_is_sent_with_all_six_keys() -> None:
    body = create_task_to_platform(Request(agent_id="a", user_details=task_pb2.User(email="a@b.co"))).body
    assert body["input"]["user"] == {
        "id": None,
        "first_name": None,
        "last_name": None,
        "email": "a@b.co",
        "additional_attributes": None,
        "timezone": None,
    }


def mcp(**fields: Any) -> dict[str, Any]:
    request = Request(agent_id="a", mcp_servers=[task_pb2.MCPServerDetails(**fields)])
    server: dict[str, Any] = create_task_to_platform(request).body["mcp_servers"][0]
    return server


def test_an_mcp_server_is_sent_with_every_key_and_the_sdk_defaults() -> None:
    assert mcp(url="https://mcp.example.com") == {
        "id": None,
        "type": "remote",
        "name": None,
        "command": None,
        "url": "https://mcp.example.com",
        "transport": "streamable-http",
        "auth_type": "none",
        "api_key": None,
        "use_secrets_manager": False,
        "client_id": None,
        "client_secret": None,
        "headers": {},
        "env_vars": {},
        "allowed_tools": [],
        "additional_scopes": [],
        "share_user_token_across_other_agents": True,
        "sso_token": "access",
        "sso_audience": None,
    }


@pytest.mark.parametrize(
    ("server_type", "transport", "sent_type", "sent_transport"),
    [
        # A local server always talks stdio, whatever was asked.
        (task_pb2.MCP_SERVER_TYPE_LOCAL, task_pb2.MCP_SERVER_TRANSPORT_UNSPECIFIED, "local", "stdio"),
        (task_pb2.MCP_SERVER_TYPE_LOCAL, task_pb2.MCP_SERVER_TRANSPORT_SSE, "local", "stdio"),
        (task_pb2.MCP_SERVER_TYPE_LOCAL, task_pb2.MCP_SERVER_TRANSPORT_STREAMABLE_HTTP, "local", "stdio"),
        # A remote server never does.
        (task_pb2.MCP_SERVER_TYPE_REMOTE, task_pb2.MCP_SERVER_TRANSPORT_STDIO, "remote", "streamable-http"),
        (
            task_pb2.MCP_SERVER_TYPE_REMOTE,
            task_pb2.MCP_SERVER_TRANSPORT_UNSPECIFIED,
            "remote",
            "streamable-http",
        ),
        (task_pb2.MCP_SERVER_TYPE_REMOTE, task_pb2.MCP_SERVER_TRANSPORT_SSE, "remote", "sse"),
        (
            task_pb2.MCP_SERVER_TYPE_REMOTE,
            task_pb2.MCP_SERVER_TRANSPORT_STREAMABLE_HTTP,
            "remote",
            "streamable-http",
        ),
        (
            task_pb2.MCP_SERVER_TYPE_UNSPECIFIED,
            task_pb2.MCP_SERVER_TRANSPORT_STDIO,
            "remote",
            "streamable-http",
        ),
        (task_pb2.MCP_SERVER_TYPE_UNSPECIFIED, task_pb2.MCP_SERVER_TRANSPORT_SSE, "remote", "sse"),
    ],
)
def test_mcp_transport_coercion(
    server_type: task_pb2.MCPServerType.ValueType,
    transport: task_pb2.MCPServerTransport.ValueType,
    sent_type: str,
    sent_transport: str,
) -> None:
    server = mcp(type=server_type, transport=transport, url="https://m.example", command="run-mcp")
    assert (server["type"], server["transport"]) == (sent_type, sent_transport)


@pytest.mark.parametrize(
    ("auth_type", "wire"),
    [
        (task_pb2.MCP_SERVER_AUTH_TYPE_UNSPECIFIED, "none"),
        (task_pb2.MCP_SERVER_AUTH_TYPE_API_KEY, "api_key"),
        (task_pb2.MCP_SERVER_AUTH_TYPE_OAUTH2, "oauth2"),
        (task_pb2.MCP_SERVER_AUTH_TYPE_CUSTOM_HEADERS, "custom_headers"),
        (task_pb2.MCP_SERVER_AUTH_TYPE_NONE, "none"),
        (task_pb2.MCP_SERVER_AUTH_TYPE_SSO_USER, "sso_user"),
    ],
)
def test_mcp_auth_type(auth_type: task_pb2.MCPServerAuthType.ValueType, wire: str) -> None:
    assert mcp(url="https://m.example", auth_type=auth_type)["auth_type"] == wire


@pytest.mark.parametrize(
    ("mode", "wire"),
    [
        (task_pb2.MCP_SERVER_SSO_TOKEN_MODE_UNSPECIFIED, "access"),
        (task_pb2.MCP_SERVER_SSO_TOKEN_MODE_ACCESS, "access"),
        (task_pb2.MCP_SERVER_SSO_TOKEN_MODE_ID, "id"),
        (task_pb2.MCP_SERVER_SSO_TOKEN_MODE_EXCHANGE, "exchange"),
    ],
)
def test_mcp_sso_token(mode: task_pb2.MCPServerSSOTokenMode.ValueType, wire: str) -> None:
    assert mcp(url="https://m.example", sso_token=mode)["sso_token"] == wire


def test_mcp_booleans_sent_as_set_even_when_false_or_true() -> None:
    server = mcp(
        url="https://m.example", use_secrets_manager=False, share_user_token_across_other_agents=False
    )
    assert (server["use_secrets_manager"], server["share_user_token_across_other_agents"]) == (False, False)


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("claude-code", "claude-code"),
        ("  Claude-Code\t", "claude-code"),
        ("CODEX", "codex"),
        ("opencode", "opencode"),
        ("Xpander ", "xpander"),
        ("", None),
        ("   ", None),
    ],
)
def test_harness_cli_is_normalised(given: str, sent: str | None) -> None:
    assert create_task_to_platform(Request(agent_id="a", harness_cli=given)).body["harness_cli"] == sent


@pytest.mark.parametrize("given", ["claude", "gemini-cli", "claude_code", "open code"])
def test_an_unknown_harness_cli_is_rejected_rather_than_dropped(given: str) -> None:
    assert "harness_cli" in violations(Request(agent_id="a", harness_cli=given))


@pytest.mark.parametrize(
    ("given", "sent"),
    [(" FULL ", "full"), ("gated", "gated"), ("", None), ("  ", None), ("Supervised", "supervised")],
)
def test_permission_mode_is_normalised_and_unknown_modes_pass(given: str, sent: str | None) -> None:
    assert (
        create_task_to_platform(Request(agent_id="a", permission_mode=given)).body["permission_mode"] == sent
    )


@pytest.mark.parametrize(
    ("version", "headers"),
    [("3", {"x-agent-version": "3"}), ("draft", {"x-agent-version": "draft"}), ("", {})],
)
def test_agent_version_travels_only_as_a_header(version: str, headers: dict[str, str]) -> None:
    call = create_task_to_platform(Request(agent_id="a", agent_version=version))
    assert call.headers == headers
    assert "agent_version" not in call.body


@pytest.mark.parametrize("version", ["3\r\nx-evil: 1", "v\x00", "версия"])
def test_an_agent_version_that_cannot_be_a_header_value_is_rejected(version: str) -> None:
    assert "agent_version" in violations(Request(agent_id="a", agent_version=version))


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (Request(agent_id=""), "agent_id"),
        (Request(agent_id="a/b"), "agent_id"),
        (Request(agent_id="a", existing_task_id=""), "existing_task_id"),
        (Request(agent_id="a", existing_task_id=".."), "existing_task_id"),
        (Request(agent_id="a", file_urls=["https://ok.example/a", "/relative"]), "file_urls[1]"),
        (Request(agent_id="a", file_urls=["ftp://files.example/a"]), "file_urls[0]"),
        (Request(agent_id="a", user_details=task_pb2.User()), "user_details.email"),
        (Request(agent_id="a", user_details=task_pb2.User(email="not-an-address")), "user_details.email"),
        (
            Request(
                agent_id="a",
                attachments=[task_pb2.Attachment(url="https://ok.example"), task_pb2.Attachment()],
            ),
            "attachments[1].url",
        ),
        (Request(agent_id="a", principal=task_pb2.Principal(id="p")), "principal.kind"),
        (
            Request(agent_id="a", principal=task_pb2.Principal(kind=task_pb2.PRINCIPAL_KIND_USER, id="  ")),
            "principal.id",
        ),
        (
            Request(
                agent_id="a", principal=task_pb2.Principal(kind=task_pb2.PRINCIPAL_KIND_USER, id="slack:U1")
            ),
            "principal.id",
        ),
        (
            Request(agent_id="a", principal=task_pb2.Principal(kind=task_pb2.PRINCIPAL_KIND_USER, id="a b")),
            "principal.id",
        ),
        (Request(agent_id="a", tool_call_limit=-1), "tool_call_limit"),
        (Request(agent_id="a", mcp_servers=[task_pb2.MCPServerDetails()]), "mcp_servers[0].url"),
        (
            Request(
                agent_id="a",
                mcp_servers=[
                    task_pb2.MCPServerDetails(url="https://ok.example"),
                    task_pb2.MCPServerDetails(url="mcp.example.com"),
                ],
            ),
            "mcp_servers[1].url",
        ),
        (
            Request(
                agent_id="a", mcp_servers=[task_pb2.MCPServerDetails(type=task_pb2.MCP_SERVER_TYPE_LOCAL)]
            ),
            "mcp_servers[0].command",
        ),
        (
            Request(
                agent_id="a",
                mcp_servers=[task_pb2.MCPServerDetails(type=task_pb2.MCP_SERVER_TYPE_LOCAL, command=" ")],
            ),
            "mcp_servers[0].command",
        ),
        (Request(agent_id="a", output_format=task_pb2.OutputFormat.ValueType(99)), "output_format"),
        (Request(agent_id="a", think_mode=task_pb2.ThinkMode.ValueType(99)), "think_mode"),
        (
            Request(agent_id="a", llm_reasoning_effort=task_pb2.LLMReasoningEffort.ValueType(99)),
            "llm_reasoning_effort",
        ),
        (
            Request(
                agent_id="a",
                attachments=[
                    task_pb2.Attachment(url="https://ok.example", kind=task_pb2.AttachmentKind.ValueType(99))
                ],
            ),
            "attachments[0].kind",
        ),
        (
            Request(
                agent_id="a",
                mcp_servers=[task_pb2.MCPServerDetails(type=task_pb2.MCPServerType.ValueType(99))],
            ),
            "mcp_servers[0].type",
        ),
        (
            Request(
                agent_id="a",
                mcp_servers=[
                    task_pb2.MCPServerDetails(
                        url="https://m.example", auth_type=task_pb2.MCPServerAuthType.ValueType(99)
                    )
                ],
            ),
            "mcp_servers[0].auth_type",
        ),
        (
            Request(
                agent_id="a",
                mcp_servers=[
                    task_pb2.MCPServerDetails(
                        url="https://m.example", sso_token=task_pb2.MCPServerSSOTokenMode.ValueType(99)
                    )
                ],
            ),
            "mcp_servers[0].sso_token",
        ),
        (
            Request(
                agent_id="a",
                mcp_servers=[
                    task_pb2.MCPServerDetails(
                        url="https://m.example", transport=task_pb2.MCPServerTransport.ValueType(99)
                    )
                ],
            ),
            "mcp_servers[0].transport",
        ),
    ],
)
def test_each_invalid_field_is_named(request_: Request, field: str) -> None:
    assert field in violations(request_)


def test_a_valid_mcp_server_needs_nothing_of_the_other_kind() -> None:
    local = mcp(type=task_pb2.MCP_SERVER_TYPE_LOCAL, command="run")
    remote = mcp(type=task_pb2.MCP_SERVER_TYPE_REMOTE, url="http://localhost:8931/mcp")
    assert (local["url"], remote["command"]) == (None, None)


def test_every_violation_is_reported_at_once() -> None:
    request = Request(
        agent_id="../x",
        existing_task_id="a?b",
        file_urls=["https://ok.example", "nope"],
        user_details=task_pb2.User(email="@example.com"),
        output_schema=struct({"type": "strnig"}),
        mcp_servers=[task_pb2.MCPServerDetails(url="https://ok.example"), task_pb2.MCPServerDetails()],
        tool_call_limit=-5,
        harness_cli="gemini",
    )
    with pytest.raises(InvalidArgument) as caught:
        create_task_to_platform(request)
    fields = [v.field for v in caught.value.field_violations]
    assert sorted(fields) == sorted(
        [
            "agent_id",
            "existing_task_id",
            "file_urls[1]",
            "user_details.email",
            "output_schema",  # not a valid schema
            "output_schema",  # and not with OUTPUT_FORMAT_JSON
            "mcp_servers[1].url",
            "tool_call_limit",
            "harness_cli",
        ]
    )
    status = caught.value.to_rpc_status()
    assert status.code == 3  # INVALID_ARGUMENT
    assert "agent_id" in caught.value.message


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "strnig"},
        {"type": "object", "properties": {"a": {"type": 5}}},
        {"minLength": -1},
        {"required": "summary"},
        {"pattern": "(unclosed"},
        {"$schema": 5},
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": []},
    ],
)
def test_an_invalid_output_schema_is_rejected(schema: dict[str, Any]) -> None:
    request = Request(agent_id="a", output_format=task_pb2.OUTPUT_FORMAT_JSON, output_schema=struct(schema))
    assert violations(request)["output_schema"].startswith("is not a valid JSON Schema")


@pytest.mark.parametrize(
    "schema",
    [
        {},
        {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}, "required": ["n"]},
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "array", "items": {"type": "string"}},
        {"$schema": "https://example.com/custom-dialect", "type": "string"},
    ],
)
def test_a_valid_output_schema_is_sent_with_integers_intact(schema: dict[str, Any]) -> None:
    request = Request(agent_id="a", output_format=task_pb2.OUTPUT_FORMAT_JSON, output_schema=struct(schema))
    sent = create_task_to_platform(request).body["output_schema"]
    assert sent == schema
    assert json.dumps(sent, sort_keys=True) == json.dumps(schema, sort_keys=True)  # 0, not 0.0


@pytest.mark.parametrize(
    "output_format",
    [
        task_pb2.OUTPUT_FORMAT_UNSPECIFIED,
        task_pb2.OUTPUT_FORMAT_TEXT,
        task_pb2.OUTPUT_FORMAT_MARKDOWN,
        task_pb2.OUTPUT_FORMAT_VOICE,
    ],
)
def test_an_output_schema_needs_the_json_format(output_format: task_pb2.OutputFormat.ValueType) -> None:
    request = Request(agent_id="a", output_format=output_format, output_schema=struct({"type": "object"}))
    assert violations(request) == {"output_schema": "is only accepted with output_format OUTPUT_FORMAT_JSON"}


@pytest.mark.parametrize("field", ["tool_call_payload_extension", "user_tokens", "output_schema"])
def test_a_number_json_cannot_carry_is_rejected(field: str) -> None:
    request = Request(agent_id="a", output_format=task_pb2.OUTPUT_FORMAT_JSON)
    getattr(request, field).update({"x": float("nan")})
    assert "not finite" in violations(request)[field]


def test_the_nested_struct_of_a_user_is_checked_too() -> None:
    user = task_pb2.User(email="a@b.co")
    user.additional_attributes.update({"x": [float("inf")]})
    assert "user_details.additional_attributes" in violations(Request(agent_id="a", user_details=user))


def test_free_form_json_keeps_its_shape() -> None:
    payload = {
        "s": "x",
        "n": 1,
        "f": 1.5,
        "big": 2**53,
        "t": True,
        "nil": None,
        "l": [1, [2, {}]],
        "o": {"e": []},
    }
    body = create_task_to_platform(Request(agent_id="a", tool_call_payload_extension=struct(payload))).body
    assert body["payload_extension"] == payload
    assert json.dumps(body["payload_extension"], sort_keys=True) == json.dumps(payload, sort_keys=True)


def test_struct_numbers_keep_their_value_and_sign_in_the_body() -> None:
    request = task_service_pb2.CreateTaskRequest(agent_id="a1")
    request.tool_call_payload_extension.update({"whole": 3.0, "half": 0.5, "negative_zero": -0.0})

    body = create_task_to_platform(request).body

    extension = body["payload_extension"]
    assert extension["whole"] == 3
    assert isinstance(extension["whole"], int)
    assert extension["half"] == 0.5
    # An integer 0 would lose the sign; the float keeps it.
    assert isinstance(extension["negative_zero"], float)
    assert math.copysign(1.0, extension["negative_zero"]) == -1.0

"""Enum tables: each covers its whole proto enum, and every value survives both directions."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.descriptor import EnumDescriptor

from bridge.convert import create_task_to_platform, enums, task_from_platform
from bridge.convert.enums import (
    MCP_SERVER_AUTH_TYPE,
    MCP_SERVER_SSO_TOKEN_MODE,
    MCP_SERVER_TRANSPORT,
    MCP_SERVER_TYPE,
    TASK_EVENT_TYPE,
    EnumTable,
)
from xpander.bridge.v1 import events_pb2, task_pb2, task_service_pb2

ENUMS: dict[str, EnumDescriptor] = {
    **task_pb2.DESCRIPTOR.enum_types_by_name,
    **events_pb2.DESCRIPTOR.enum_types_by_name,
}
TABLES: list[EnumTable[Any]] = [value for value in vars(enums).values() if isinstance(value, EnumTable)]
# Values with no platform wire string: zero everywhere, and the bridge's own heartbeat.
NO_WIRE_VALUE = {"TASK_EVENT_TYPE_HEARTBEAT"}


def test_every_proto_enum_has_a_table() -> None:
    assert {table.enum_name for table in TABLES} == set(ENUMS)


@pytest.mark.parametrize("table", TABLES, ids=lambda table: table.enum_name)
def test_a_table_covers_every_value_but_unspecified(table: EnumTable[Any]) -> None:
    descriptor = ENUMS[table.enum_name]
    assert descriptor.values[0].number == 0
    assert descriptor.values[0].name.endswith("_UNSPECIFIED")
    expected = {v.number for v in descriptor.values[1:] if v.name not in NO_WIRE_VALUE}
    assert set(table.wire) == expected


@pytest.mark.parametrize("table", TABLES, ids=lambda table: table.enum_name)
def test_wire_strings_follow_the_value_names(table: EnumTable[Any]) -> None:
    # e.g. MCP_SERVER_TRANSPORT_STREAMABLE_HTTP <-> "streamable-http": a typo in a table shows up here.
    descriptor = ENUMS[table.enum_name]
    prefix = descriptor.values[0].name.removesuffix("UNSPECIFIED")
    for number, string in table.wire.items():
        name = descriptor.values_by_number[number].name.removeprefix(prefix)
        assert name == string.upper().replace("-", "_")


def test_a_wire_string_is_never_shared() -> None:
    with pytest.raises(ValueError, match="share a wire string"):
        EnumTable(task_pb2.ThinkMode, {task_pb2.THINK_MODE_DEFAULT: "x", task_pb2.THINK_MODE_HARDER: "x"})


def test_heartbeat_is_not_a_platform_type() -> None:
    assert "heartbeat" not in TASK_EVENT_TYPE.by_wire


def created_then_read(request: task_service_pb2.CreateTaskRequest) -> tuple[dict[str, Any], task_pb2.Task]:
    """The create body, and the Task read back from a platform that echoes the body (as it does)."""
    body = create_task_to_platform(request).body
    echoed = {**body, "id": "t1", "agent_id": "a1", "organization_id": "o1", "created_at": 0}
    return body, task_from_platform(echoed)


@pytest.mark.parametrize("output_format", list(task_pb2.OutputFormat.values())[1:])
def test_output_format_out_and_back(output_format: task_pb2.OutputFormat.ValueType) -> None:
    _, task = created_then_read(
        task_service_pb2.CreateTaskRequest(agent_id="a1", output_format=output_format)
    )
    assert task.output_format == output_format


@pytest.mark.parametrize("think_mode", list(task_pb2.ThinkMode.values())[1:])
def test_think_mode_out_and_back(think_mode: task_pb2.ThinkMode.ValueType) -> None:
    _, task = created_then_read(task_service_pb2.CreateTaskRequest(agent_id="a1", think_mode=think_mode))
    assert task.think_mode == think_mode


@pytest.mark.parametrize("effort", list(task_pb2.LLMReasoningEffort.values())[1:])
def test_reasoning_effort_out_and_back(effort: task_pb2.LLMReasoningEffort.ValueType) -> None:
    request = task_service_pb2.CreateTaskRequest(agent_id="a1", llm_reasoning_effort=effort)
    assert created_then_read(request)[1].llm_reasoning_effort == effort


@pytest.mark.parametrize("kind", list(task_pb2.AttachmentKind.values())[1:])
def test_attachment_kind_out_and_back(kind: task_pb2.AttachmentKind.ValueType) -> None:
    request = task_service_pb2.CreateTaskRequest(
        agent_id="a1", attachments=[task_pb2.Attachment(url="https://x.example", kind=kind)]
    )
    assert created_then_read(request)[1].input.attachments[0].kind == kind


@pytest.mark.parametrize("kind", list(task_pb2.PrincipalKind.values())[1:])
def test_principal_kind_out_and_back(kind: task_pb2.PrincipalKind.ValueType) -> None:
    request = task_service_pb2.CreateTaskRequest(
        agent_id="a1", principal=task_pb2.Principal(kind=kind, id="p")
    )
    assert created_then_read(request)[1].input.principal.kind == kind


@pytest.mark.parametrize(
    ("table", "field"),
    [
        (MCP_SERVER_AUTH_TYPE, "auth_type"),
        (MCP_SERVER_SSO_TOKEN_MODE, "sso_token"),
        (MCP_SERVER_TYPE, "type"),
        (MCP_SERVER_TRANSPORT, "transport"),
    ],
    ids=lambda item: getattr(item, "enum_name", item),
)
def test_mcp_enums_out_and_back(table: EnumTable[Any], field: str) -> None:
    for number in table.wire:
        server = task_pb2.MCPServerDetails(url="https://m.example", command="run", **{field: number})
        if field == "transport":
            # Only a local server keeps stdio and only a remote one the others (the SDK's coercion).
            server.type = (
                task_pb2.MCP_SERVER_TYPE_LOCAL
                if number == task_pb2.MCP_SERVER_TRANSPORT_STDIO
                else task_pb2.MCP_SERVER_TYPE_REMOTE
            )
        _, task = created_then_read(task_service_pb2.CreateTaskRequest(agent_id="a1", mcp_servers=[server]))
        assert getattr(task.mcp_servers[0], field) == number
        assert not task.mcp_servers[0].unrecognized_enum_values

"""The proto contract against issue 2 and docs/platform-contract.md: names, presence, types and HTTP bindings.

(Leading comments on every element are enforced by buf lint COMMENTS, not here.)
"""

from __future__ import annotations

import re

import pytest
from google.api import annotations_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor

from xpander.bridge.v1 import events_pb2, task_pb2, task_service_pb2

SERVICE = task_service_pb2.DESCRIPTOR.services_by_name["TaskService"]

# The SDK's create-task parameters (Tasks.acreate, Agent.acreate_task); then §2.2's newer fields.
SDK_CREATE_PARAMETERS = [
    "prompt",
    "existing_task_id",
    "file_urls",
    "user_details",
    "agent_version",
    "tool_call_payload_extension",
    "source",
    "worker_id",
    "run_locally",
    "output_format",
    "output_schema",
    "events_streaming",
    "additional_context",
    "instructions_override",
    "test_run_node_id",
    "user_oidc_token",
    "expected_output",
    "mcp_servers",
    "triggering_agent_id",
    "title",
    "think_mode",
    "disable_attachment_injection",
    "return_metrics",
    "user_tokens",
]
NEWER_CREATE_FIELDS = [
    "tool_call_limit",
    "llm_model_provider",
    "llm_model_name",
    "llm_reasoning_effort",
    "harness_cli",
    "permission_mode",
    "attachments",
    "principal",
]
# §2.2 parameters typed `T?` whose "not given" (null) differs from the zero value.
NULLABLE_CREATE_SCALARS = [
    "existing_task_id",
    "agent_version",
    "source",
    "worker_id",
    "additional_context",
    "instructions_override",
    "test_run_node_id",
    "user_oidc_token",
    "expected_output",
    "triggering_agent_id",
    "title",
    "tool_call_limit",
    "llm_model_provider",
    "llm_model_name",
    "harness_cli",
    "permission_mode",
]

# §3.1, then the TasksListItem keys of §4.2 that a full Task lacks.
TASK_KEYS = [
    "id",
    "agent_id",
    "organization_id",
    "input",
    "status",
    "internal_status",
    "last_executed_node_id",
    "agent_version",
    "created_at",
    "started_at",
    "paused_at",
    "finished_at",
    "result",
    "parent_execution",
    "conversation_id",
    "conversation_kind",
    "sub_executions",
    "should_update_parent",
    "is_manually_stopped",
    "payload_extension",
    "execution_kind",
    "hitl_request",
    "pending_eca_request",
    "source",
    "voice_id",
    "output_format",
    "output_schema",
    "events_streaming",
    "is_orchestration",
    "is_gateway",
    "is_app",
    "background_auth_eligible",
    "additional_context",
    "tool_call_limit",
    "instructions_override",
    "test_run_node_id",
    "user_oidc_token",
    "expected_output",
    "mcp_servers",
    "triggering_agent_id",
    "title",
    "think_mode",
    "disable_attachment_injection",
    "user_tokens",
    "deep_planning",
    "must_deep_plan",
    "execution_attempts",
    "return_metrics",
    "llm_model_provider",
    "llm_model_name",
    "llm_reasoning_effort",
    "harness_cli",
    "permission_mode",
    "tokens",
    "used_tools",
    "duration",
]
LIST_ITEM_KEYS = ["user_id", "parent_task_id", "updated_at", "source_node_type", "process"]
NULLABLE_TASK_STRINGS = [
    "internal_status",
    "last_executed_node_id",
    "agent_version",
    "result",
    "parent_execution",
    "conversation_id",
    "conversation_kind",
    "execution_kind",
    "source",
    "voice_id",
    "additional_context",
    "instructions_override",
    "test_run_node_id",
    "user_oidc_token",
    "expected_output",
    "triggering_agent_id",
    "title",
    "llm_model_provider",
    "llm_model_name",
    "harness_cli",
    "permission_mode",
    "user_id",
    "parent_task_id",
    "source_node_type",
]

MCP_KEYS = [
    "id",
    "type",
    "name",
    "command",
    "url",
    "transport",
    "auth_type",
    "api_key",
    "use_secrets_manager",
    "client_id",
    "client_secret",
    "headers",
    "env_vars",
    "allowed_tools",
    "additional_scopes",
    "share_user_token_across_other_agents",
    "sso_token",
    "sso_audience",
]
# Nullable strings, and the booleans whose SDK default is not false or must be sent as given.
NULLABLE_MCP = [
    "id",
    "name",
    "command",
    "url",
    "api_key",
    "client_id",
    "client_secret",
    "sso_audience",
    "use_secrets_manager",
    "share_user_token_across_other_agents",
]

UNRECOGNIZED = "unrecognized_enum_values"


def names(message: Descriptor) -> list[str]:
    return [field.name for field in message.fields]


def type_name(field: FieldDescriptor) -> str:
    """The full name of a field's message or enum type."""
    declared = field.message_type or field.enum_type
    assert declared is not None, field.name
    return str(declared.full_name)


def test_the_service_has_exactly_the_five_rpcs() -> None:
    rpcs = {
        method.name: (method.input_type.name, method.output_type.name, method.server_streaming)
        for method in SERVICE.methods
    }
    assert rpcs == {
        "CreateTask": ("CreateTaskRequest", "CreateTaskResponse", False),
        "GetTask": ("GetTaskRequest", "GetTaskResponse", False),
        "StopTask": ("StopTaskRequest", "StopTaskResponse", False),
        "ListTasks": ("ListTasksRequest", "ListTasksResponse", False),
        "StreamEvents": ("StreamEventsRequest", "StreamEventsResponse", True),
    }
    assert not any(method.client_streaming for method in SERVICE.methods)


@pytest.mark.parametrize("method", list(SERVICE.methods), ids=lambda method: method.name)
def test_every_rpc_has_an_http_binding_whose_path_variables_are_request_fields(
    method: MethodDescriptor,
) -> None:
    rule = method.GetOptions().Extensions[annotations_pb2.http]
    request_fields = set(names(method.input_type))
    for binding in [rule, *rule.additional_bindings]:
        verb = binding.WhichOneof("pattern")
        assert verb in ("get", "post", "delete", "patch", "put")
        path = getattr(binding, verb)
        assert path.startswith("/v1/")
        # `{task_id}` or `{task_id=...}`: the variable must name a field of the request.
        assert set(re.findall(r"\{([a-z_.]+)", path)) <= request_fields, path


def test_create_task_request_has_every_sdk_parameter_under_its_name_and_nothing_else() -> None:
    fields = names(task_service_pb2.CreateTaskRequest.DESCRIPTOR)
    assert sorted(fields) == sorted(["agent_id", *SDK_CREATE_PARAMETERS, *NEWER_CREATE_FIELDS])


def test_create_task_request_keeps_null_apart_from_the_zero_value() -> None:
    by_name = task_service_pb2.CreateTaskRequest.DESCRIPTOR.fields_by_name
    assert [name for name in NULLABLE_CREATE_SCALARS if not by_name[name].has_presence] == []
    # The other scalars have no presence: their zero value is the SDK's default.
    scalars = {
        name for name, field in by_name.items() if field.message_type is None and not field.is_repeated
    }
    with_presence = {name for name in scalars if by_name[name].has_presence}
    assert with_presence == set(NULLABLE_CREATE_SCALARS)


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (task_service_pb2.CreateTaskRequest, "tool_call_payload_extension"),
        (task_service_pb2.CreateTaskRequest, "output_schema"),
        (task_service_pb2.CreateTaskRequest, "user_tokens"),
        (task_pb2.User, "additional_attributes"),
        (task_pb2.Task, "payload_extension"),
        (task_pb2.Task, "output_schema"),
        (task_pb2.Task, "user_tokens"),
        (task_pb2.Task, "process"),
        (events_pb2.TaskCompactization, "data"),
    ],
)
def test_free_form_json_objects_are_structs(message: type, field: str) -> None:
    descriptor: Descriptor = message.DESCRIPTOR  # type: ignore[attr-defined]
    assert type_name(descriptor.fields_by_name[field]) == "google.protobuf.Struct"


@pytest.mark.parametrize(
    ("message", "field"),
    [(events_pb2.TaskEvent, "data"), (events_pb2.ToolCall, "payload"), (events_pb2.ToolCall, "result")],
)
def test_free_form_json_values_are_values(message: type, field: str) -> None:
    descriptor: Descriptor = message.DESCRIPTOR  # type: ignore[attr-defined]
    assert type_name(descriptor.fields_by_name[field]) == "google.protobuf.Value"


def test_task_has_every_field_of_the_platform_task_and_list_item() -> None:
    assert names(task_pb2.Task.DESCRIPTOR) == [*TASK_KEYS, *LIST_ITEM_KEYS, UNRECOGNIZED]


def test_task_strings_that_may_be_null_have_presence() -> None:
    by_name = task_pb2.Task.DESCRIPTOR.fields_by_name
    assert [name for name in NULLABLE_TASK_STRINGS if not by_name[name].has_presence] == []
    assert by_name["tool_call_limit"].has_presence


def test_task_datetimes_are_timestamps() -> None:
    timestamps = {
        field.name
        for field in task_pb2.Task.DESCRIPTOR.fields
        if field.message_type is not None and field.message_type.full_name == "google.protobuf.Timestamp"
    }
    assert timestamps == {"created_at", "started_at", "paused_at", "finished_at", "updated_at"}


def test_mcp_server_details_has_every_key_of_section_2_5() -> None:
    descriptor = task_pb2.MCPServerDetails.DESCRIPTOR
    assert names(descriptor) == [*MCP_KEYS, UNRECOGNIZED]
    assert [name for name in NULLABLE_MCP if not descriptor.fields_by_name[name].has_presence] == []


@pytest.mark.parametrize(
    ("message", "keys"),
    [
        (task_pb2.User, ["id", "email", "first_name", "last_name", "timezone", "additional_attributes"]),
        (
            task_pb2.Attachment,
            [
                "url",
                "name",
                "mime",
                "size",
                "kind",
                "sha256",
                "expires_at",
                "source",
                "transcript",
                UNRECOGNIZED,
            ],
        ),
        (task_pb2.Principal, ["kind", "id", "email", "display_name", UNRECOGNIZED]),
        (task_pb2.TaskInput, ["text", "files", "user", "attachments", "principal"]),
        (
            task_pb2.Tokens,
            ["completion_tokens", "prompt_tokens", "cache_read_tokens", "cache_write_tokens", "total_tokens"],
        ),
        (task_pb2.DeepPlanning, ["enabled", "enforce", "started", "question_raised", "tasks"]),
        (task_pb2.DeepPlanningItem, ["id", "title", "completed"]),
        (task_pb2.HumanInTheLoopRequest, ["wait_node_id"]),
        (task_pb2.PendingECARequest, ["connector_name", "auth_url"]),
        (
            events_pb2.ContextStatus,
            [
                "estimated_tokens",
                "context_window",
                "percent",
                "auto_compact_threshold",
                "emergency_threshold",
                "compacting",
            ],
        ),
    ],
    ids=lambda item: getattr(getattr(item, "DESCRIPTOR", None), "name", "keys"),
)
def test_nested_models_have_every_key(message: type, keys: list[str]) -> None:
    assert sorted(names(message.DESCRIPTOR)) == sorted(keys)  # type: ignore[attr-defined]


def test_a_message_with_enums_keeps_unknown_enum_strings() -> None:
    for message in task_pb2.DESCRIPTOR.message_types_by_name.values():
        has_enum = any(field.enum_type is not None for field in message.fields)
        assert has_enum == (UNRECOGNIZED in message.fields_by_name), message.name


def test_task_event_carries_every_payload_and_the_raw_data() -> None:
    descriptor = events_pb2.TaskEvent.DESCRIPTOR
    fields = descriptor.fields_by_name
    assert fields["sequence"].type == FieldDescriptor.TYPE_UINT64
    assert type_name(fields["type"]) == "xpander.bridge.v1.TaskEventType"
    assert fields["type_name"].type == FieldDescriptor.TYPE_STRING
    assert type_name(fields["time"]) == "google.protobuf.Timestamp"
    payload = {field.name for field in descriptor.oneofs_by_name["payload"].fields}
    assert payload == {"task", "chunk", "tool_call", "plan", "auth", "compactization", "context_status"}
    assert fields["data"].containing_oneof is None


def test_stream_events_request_resumes_and_beats() -> None:
    fields = task_service_pb2.StreamEventsRequest.DESCRIPTOR.fields_by_name
    assert set(fields) == {"task_id", "after_sequence", "heartbeat_interval"}
    assert fields["after_sequence"].type == FieldDescriptor.TYPE_UINT64
    assert fields["after_sequence"].has_presence
    assert type_name(fields["heartbeat_interval"]) == "google.protobuf.Duration"


def test_list_tasks_request_has_the_filters_of_section_4_2_and_paging() -> None:
    assert names(task_service_pb2.ListTasksRequest.DESCRIPTOR) == [
        "agent_id",
        "user_id",
        "parent_task_id",
        "triggering_agent_id",
        "status",
        "internal_status",
        "page_size",
        "page_token",
    ]
    assert "next_page_token" in names(task_service_pb2.ListTasksResponse.DESCRIPTOR)


def test_every_enum_starts_at_unspecified_zero() -> None:
    for module in (task_pb2, events_pb2):
        for enum in module.DESCRIPTOR.enum_types_by_name.values():
            assert enum.values[0].number == 0
            assert enum.values[0].name.endswith("_UNSPECIFIED"), enum.name

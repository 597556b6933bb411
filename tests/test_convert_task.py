"""Platform Task JSON and task list items -> Task: goldens, every field, leniency and shape errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import timestamp_pb2

from bridge.convert import PayloadError, task_from_list_item, task_from_platform
from xpander.bridge.v1 import task_pb2

GOLDEN = Path(__file__).parent / "golden"


def golden(name: str) -> Any:
    return json.loads((GOLDEN / name).read_text())


def minimal(**extra: Any) -> dict[str, Any]:
    task: dict[str, Any] = golden("task_minimal.json")
    task.update(extra)
    return task


def at(text: str) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(datetime.fromisoformat(text))
    return stamp


def test_the_minimal_task_of_section_3_5_parses() -> None:
    task = task_from_platform(golden("task_minimal.json"))
    assert task == task_pb2.Task(
        id="t1",
        agent_id="a1",
        organization_id="org1",
        input=task_pb2.TaskInput(),
        created_at=at("2026-01-01T00:00:00+00:00"),
    )
    assert task.HasField("input")
    assert task.status == task_pb2.TASK_STATUS_UNSPECIFIED
    assert not task.HasField("result")


def test_every_field_of_a_full_task_is_read() -> None:
    task = task_from_platform(golden("task_full.json"))
    unset = {field.name for field in task_pb2.Task.DESCRIPTOR.fields} - {f.name for f, _ in task.ListFields()}
    # Only the map of unknown enum strings stays empty when every enum is known.
    assert unset == {"unrecognized_enum_values"}


def test_a_full_task_reads_to_the_expected_message() -> None:
    task = task_from_platform(golden("task_full.json"))
    assert task.input.text == "Summarise the report"
    assert list(task.input.files) == ["https://example.com/r.pdf"]
    assert task.input.user.email == "ada@example.com"
    assert task.input.user.additional_attributes["team"] == "analytics"
    attachment = task.input.attachments[0]
    assert (attachment.kind, attachment.size, attachment.expires_at) == (
        task_pb2.ATTACHMENT_KIND_PDF,
        1048576,
        "2026-12-01T00:00:00Z",
    )
    assert task.input.principal == task_pb2.Principal(
        kind=task_pb2.PRINCIPAL_KIND_USER, id="u1", email="ada@example.com", display_name="Ada"
    )
    assert task.status == task_pb2.TASK_STATUS_COMPLETED
    assert task.created_at == at("2026-01-01T00:00:00+00:00")
    assert task.started_at.ToDatetime(tzinfo=UTC) == datetime(2026, 1, 1, 0, 0, 1, 250000, tzinfo=UTC)
    assert task.paused_at == at("2026-01-01T00:00:02+00:00")  # +02:00 offset folded into UTC
    assert task.finished_at == at("2026-01-01T00:00:03+00:00")  # naive means UTC
    assert task.updated_at == at("2026-01-01T00:00:03+00:00")  # epoch seconds
    assert list(task.sub_executions) == ["t2", "t3"]
    assert task.payload_extension["tenant"] == "acme"
    assert task.hitl_request.wait_node_id == "hitl-1"
    assert task.pending_eca_request == task_pb2.PendingECARequest(
        connector_name="github", auth_url="https://auth.example.com/gh"
    )
    assert task.output_format == task_pb2.OUTPUT_FORMAT_JSON
    assert task.think_mode == task_pb2.THINK_MODE_HARDER
    assert task.llm_reasoning_effort == task_pb2.LLM_REASONING_EFFORT_HIGH
    assert task.tool_call_limit == 25
    server = task.mcp_servers[0]
    assert (server.type, server.transport, server.auth_type, server.sso_token) == (
        task_pb2.MCP_SERVER_TYPE_REMOTE,
        task_pb2.MCP_SERVER_TRANSPORT_STREAMABLE_HTTP,
        task_pb2.MCP_SERVER_AUTH_TYPE_OAUTH2,
        task_pb2.MCP_SERVER_SSO_TOKEN_MODE_ID,
    )
    assert dict(server.headers) == {"x-team": "analytics"}
    assert not server.HasField("command")
    assert server.HasField("use_secrets_manager")
    assert not server.use_secrets_manager
    assert task.deep_planning == task_pb2.DeepPlanning(
        enabled=True,
        enforce=True,
        started=True,
        question_raised=True,
        tasks=[
            task_pb2.DeepPlanningItem(id="s1", title="Read", completed=True),
            task_pb2.DeepPlanningItem(id="s2", title="Write"),
        ],
    )
    assert task.tokens == task_pb2.Tokens(
        completion_tokens=10, prompt_tokens=20, cache_read_tokens=5, cache_write_tokens=1, total_tokens=30
    )
    assert (task.duration, task.execution_attempts) == (3.5, 2)
    assert task.process["state"] == "running"


def test_nulls_leave_fields_unset() -> None:
    data = dict.fromkeys(golden("task_full.json"))
    data.update(golden("task_minimal.json"))
    task = task_from_platform(data)
    assert task == task_from_platform(golden("task_minimal.json"))


def test_unknown_keys_are_ignored() -> None:
    task = task_from_platform(minimal(brand_new_field={"x": 1}, another=[1, 2], configuration="client-side"))
    assert task == task_from_platform(golden("task_minimal.json"))


@pytest.mark.parametrize(
    ("key", "enum_field", "raw"),
    [
        ("status", "status", "running"),
        ("status", "status", "Pending"),
        ("output_format", "output_format", "html"),
        ("think_mode", "think_mode", "hardest"),
        ("llm_reasoning_effort", "llm_reasoning_effort", "max"),
    ],
)
def test_unknown_enum_strings_are_kept_beside_unspecified(key: str, enum_field: str, raw: str) -> None:
    task = task_from_platform(minimal(**{key: raw}))
    assert getattr(task, enum_field) == 0
    assert dict(task.unrecognized_enum_values) == {key: raw}


def test_unknown_enum_strings_of_nested_objects_are_kept_on_them() -> None:
    task = task_from_platform(
        minimal(
            input={
                "attachments": [{"url": "https://x.example", "kind": "spreadsheet"}],
                "principal": {"kind": "robot", "id": "r1"},
            },
            mcp_servers=[
                {"type": "cloud", "transport": "websocket", "auth_type": "mtls", "sso_token": "saml"}
            ],
        )
    )
    assert dict(task.input.attachments[0].unrecognized_enum_values) == {"kind": "spreadsheet"}
    assert dict(task.input.principal.unrecognized_enum_values) == {"kind": "robot"}
    assert dict(task.mcp_servers[0].unrecognized_enum_values) == {
        "type": "cloud",
        "transport": "websocket",
        "auth_type": "mtls",
        "sso_token": "saml",
    }


@pytest.mark.parametrize(
    ("wire", "status"),
    [
        ("pending", task_pb2.TASK_STATUS_PENDING),
        ("executing", task_pb2.TASK_STATUS_EXECUTING),
        ("paused", task_pb2.TASK_STATUS_PAUSED),
        ("error", task_pb2.TASK_STATUS_ERROR),
        ("failed", task_pb2.TASK_STATUS_FAILED),
        ("completed", task_pb2.TASK_STATUS_COMPLETED),
        ("stopped", task_pb2.TASK_STATUS_STOPPED),
    ],
)
def test_every_status(wire: str, status: task_pb2.TaskStatus.ValueType) -> None:
    assert task_from_platform(minimal(status=wire)).status == status
    assert (
        task_from_list_item({"id": "t", "agent_id": "a", "organization_id": "o", "status": wire}).status
        == status
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-25T09:43:34.187708Z", "2026-11-25T09:43:34.187708+00:00"),
        ("2026-11-25T09:43:34.187708123Z", "2026-11-25T09:43:34.187708+00:00"),
        ("2026-11-25T11:43:34+02:00", "2026-11-25T09:43:34+00:00"),
        ("2026-11-25T09:43:34", "2026-11-25T09:43:34+00:00"),
        ("2026-11-25 09:43:34", "2026-11-25T09:43:34+00:00"),
        (1795599814, "2026-11-25T09:43:34+00:00"),
        (1795599814.5, "2026-11-25T09:43:34.500000+00:00"),
        ("1795599814", "2026-11-25T09:43:34+00:00"),
        (1795599814187, "2026-11-25T09:43:34.187000+00:00"),  # milliseconds, as pydantic reads them
        (0, "1970-01-01T00:00:00+00:00"),
        ("1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.500000+00:00"),
    ],
)
def test_timestamps(value: Any, expected: str) -> None:
    assert task_from_platform(minimal(created_at=value)).created_at == at(expected)


@pytest.mark.parametrize(
    "value", ["yesterday", "2026-13-01T00:00:00Z", True, [], {}, float("nan"), 10**30, "inf"]
)
def test_a_bad_timestamp_names_its_key(value: Any) -> None:
    with pytest.raises(PayloadError, match=r"^finished_at: "):
        task_from_platform(minimal(finished_at=value))


@pytest.mark.parametrize("key", ["id", "agent_id", "organization_id", "input", "created_at"])
def test_required_keys(key: str) -> None:
    data = minimal()
    del data[key]
    with pytest.raises(PayloadError, match=f"^{key}: is required"):
        task_from_platform(data)
    data[key] = None
    with pytest.raises(PayloadError, match=f"^{key}: is required"):
        task_from_platform(data)


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"id": 7}, "id"),
        ({"input": "hello"}, "input"),
        ({"input": {"text": 5}}, "input.text"),
        ({"input": {"files": "https://x"}}, "input.files"),
        ({"input": {"files": ["https://x", 3]}}, "input.files[1]"),
        ({"input": {"user": {"email": ["a"]}}}, "input.user.email"),
        ({"input": {"user": {"additional_attributes": []}}}, "input.user.additional_attributes"),
        ({"input": {"attachments": [{"url": "u"}, "x"]}}, "input.attachments[1]"),
        ({"input": {"attachments": [{"url": "u", "size": "big"}]}}, "input.attachments[0].size"),
        ({"input": {"principal": {"kind": 1}}}, "input.principal.kind"),
        ({"status": 3}, "status"),
        ({"events_streaming": "true"}, "events_streaming"),
        ({"tool_call_limit": 2.5}, "tool_call_limit"),
        ({"tool_call_limit": 2**64}, "tool_call_limit"),
        ({"duration": "3s"}, "duration"),
        ({"payload_extension": [1]}, "payload_extension"),
        ({"mcp_servers": [{"headers": {"a": 1}}]}, "mcp_servers[0].headers.a"),
        ({"mcp_servers": {"a": 1}}, "mcp_servers"),
        ({"deep_planning": {"tasks": [{"id": 1}]}}, "deep_planning.tasks[0].id"),
        ({"tokens": {"prompt_tokens": "9"}}, "tokens.prompt_tokens"),
        ({"hitl_request": "wait"}, "hitl_request"),
        ({"title": 5}, "title"),
    ],
)
def test_a_wrong_type_names_its_key(extra: dict[str, Any], key: str) -> None:
    with pytest.raises(PayloadError) as caught:
        task_from_platform(minimal(**extra))
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{key}: ")


def test_a_non_object_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="expected a task object"):
        task_from_platform(["not", "a", "task"])  # type: ignore[arg-type]


def test_a_string_protobuf_cannot_hold_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match=r"^result: "):
        task_from_platform(minimal(result="\ud800"))


def test_integral_floats_are_integers_and_total_tokens_is_computed_when_missing() -> None:
    task = task_from_platform(
        minimal(tool_call_limit=3.0, tokens={"completion_tokens": 2, "prompt_tokens": 5})
    )
    assert task.tool_call_limit == 3
    assert task.tokens.total_tokens == 7


def test_the_head_sdk_quirk_of_list_wrapped_values_is_tolerated() -> None:
    task = task_from_platform(
        minimal(expected_output=[None], triggering_agent_id=[None], title=["T"], mcp_servers=[[]])
    )
    assert not task.HasField("expected_output")
    assert not task.HasField("triggering_agent_id")
    assert task.title == "T"
    assert len(task.mcp_servers) == 0


def test_empty_objects_are_present() -> None:
    task = task_from_platform(minimal(payload_extension={}, hitl_request={}, deep_planning={}))
    assert task.HasField("payload_extension")
    assert task.HasField("hitl_request")
    assert task.HasField("deep_planning")


def test_list_items_read_every_key_of_tasks_list_item() -> None:
    full, bare = golden("list_items.json")
    task = task_from_list_item(full)
    assert task == task_pb2.Task(
        id="t1",
        agent_id="a1",
        organization_id="org1",
        status=task_pb2.TASK_STATUS_COMPLETED,
        user_id="u1",
        parent_task_id="t0",
        triggering_agent_id="a0",
        created_at=at("2026-01-01T00:00:00+00:00"),
        updated_at=at("2026-01-01T00:00:03+00:00"),
        source_node_type="sdk",
        result="done",
        title="Q3",
        execution_kind="resident",
        process=task.process,
        conversation_kind="gateway",
    )
    assert task.process["frozen"] is True
    assert task_from_list_item(bare) == task_pb2.Task(
        id="t2", agent_id="a1", organization_id="org1", status=task_pb2.TASK_STATUS_PENDING
    )


def test_list_items_ignore_keys_a_list_item_does_not_have() -> None:
    item = {"id": "t", "agent_id": "a", "organization_id": "o", "status": "error", "input": 5, "tokens": "x"}
    assert not task_from_list_item(item).HasField("input")


@pytest.mark.parametrize("key", ["id", "agent_id", "organization_id", "status"])
def test_list_item_required_keys(key: str) -> None:
    item = {"id": "t", "agent_id": "a", "organization_id": "o", "status": "error"}
    del item[key]
    with pytest.raises(PayloadError, match=f"^{key}: is required"):
        task_from_list_item(item)


def test_an_unknown_list_item_status_is_kept() -> None:
    task = task_from_list_item({"id": "t", "agent_id": "a", "organization_id": "o", "status": "archived"})
    assert task.status == task_pb2.TASK_STATUS_UNSPECIFIED
    assert dict(task.unrecognized_enum_values) == {"status": "archived"}

"""SSE envelopes -> TaskEvent: all 28 platform types, typed payloads, raw fallback and heartbeats."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import struct_pb2

from bridge.convert import PayloadError, event_from_platform, heartbeat_event, task_from_platform
from xpander.bridge.v1 import events_pb2, task_pb2, task_service_pb2

GOLDEN = Path(__file__).parent / "golden"
ENVELOPES: list[dict[str, Any]] = json.loads((GOLDEN / "events.json").read_text())
BY_TYPE = {envelope["type"]: envelope for envelope in ENVELOPES}

# The typed payload each type gets; every other type carries its raw `data`.
PAYLOAD_OF = {
    "task_created": "task",
    "task_updated": "task",
    "task_finished": "task",
    "sub_task_created": "task",
    "sub_task_updated": "task",
    "sub_task_finished": "task",
    "chunk": "chunk",
    "tool_call_request": "tool_call",
    "tool_call_result": "tool_call",
    "think": "tool_call",
    "analyze": "tool_call",
    "plan_updated": "plan",
    "auth_event": "auth",
    "task_compactization": "compactization",
    "context_status": "context_status",
}


def envelope(type_name: str, data: Any, **extra: Any) -> dict[str, Any]:
    return {
        "type": type_name,
        "task_id": "t1",
        "organization_id": "org1",
        "time": "2026-11-25T09:43:34Z",
        "data": data,
        **extra,
    }


def raw(value: Any) -> struct_pb2.Value:
    holder = struct_pb2.Struct()
    holder.update({"v": value})
    return holder.fields["v"]


def test_the_golden_stream_covers_every_platform_event_type() -> None:
    platform_types = {
        value.name
        for value in events_pb2.TaskEventType.DESCRIPTOR.values
        if value.number not in (events_pb2.TASK_EVENT_TYPE_UNSPECIFIED, events_pb2.TASK_EVENT_TYPE_HEARTBEAT)
    }
    assert len(platform_types) == 28
    assert {"TASK_EVENT_TYPE_" + name.upper() for name in BY_TYPE} == platform_types


@pytest.mark.parametrize("sequence", range(1, len(ENVELOPES) + 1))
def test_every_type_converts_with_its_envelope(sequence: int) -> None:
    source = ENVELOPES[sequence - 1]
    event = event_from_platform(sequence, source)
    assert event.sequence == sequence
    assert event.type_name == source["type"]
    assert events_pb2.TaskEventType.Name(event.type) == "TASK_EVENT_TYPE_" + source["type"].upper()
    assert (event.task_id, event.organization_id) == ("t1", "org1")
    assert event.HasField("time")
    expected_payload = PAYLOAD_OF.get(source["type"])
    assert event.WhichOneof("payload") == expected_payload
    if expected_payload is None:
        assert event.data == raw(source["data"])
    else:
        assert not event.HasField("data"), "a typed payload is not duplicated as raw data"


def test_task_snapshots() -> None:
    event = event_from_platform(2, BY_TYPE["task_created"])
    assert event.task == task_from_platform(BY_TYPE["task_created"]["data"])
    assert event.task.status == task_pb2.TASK_STATUS_PENDING
    assert event.task.events_streaming
    finished = event_from_platform(28, BY_TYPE["task_finished"])
    assert (finished.task.status, finished.task.result) == (task_pb2.TASK_STATUS_COMPLETED, "Hello, world")
    sub = event_from_platform(22, BY_TYPE["sub_task_finished"])
    assert (sub.task.id, sub.task.parent_execution) == ("t2", "t1")


def test_time_and_identity() -> None:
    event = event_from_platform(1, BY_TYPE["tool_call_request"])
    assert event.time.ToJsonString() == "2026-11-25T09:43:37Z"
    assert event.identity == events_pb2.EventIdentity(name="Researcher", icon="🔎")
    precise = event_from_platform(1, BY_TYPE["connected"])
    assert precise.time.ToJsonString() == "2026-11-25T09:43:34.187708Z"


def test_chunk() -> None:
    assert event_from_platform(4, BY_TYPE["chunk"]).chunk == "Hello, "
    assert event_from_platform(4, envelope("chunk", "")).WhichOneof("payload") == "chunk"


def test_tool_call_request_and_result() -> None:
    request = event_from_platform(6, BY_TYPE["tool_call_request"]).tool_call
    assert request == events_pb2.ToolCall(
        request_id="r1",
        operation_id="search",
        tool_call_id="call_1",
        graph_node_id="n1",
        tool_name="search",
        payload=raw({"q": "revenue"}),
        reasoning=events_pb2.ToolCallReasoning(title="Look up", description="Find numbers"),
        plan_task_id="s1",
    )
    result = event_from_platform(7, BY_TYPE["tool_call_result"]).tool_call
    assert result.result == raw([{"title": "Q3", "value": 12.5}])
    assert (result.is_error, result.approval_request_id) == (False, "ap1")
    assert not result.HasField("reasoning")


@pytest.mark.parametrize("kind", ["think", "analyze"])
def test_think_and_analyze_are_tool_calls(kind: str) -> None:
    call = event_from_platform(9, BY_TYPE[kind]).tool_call
    assert (call.operation_id, call.tool_name) == (kind, kind)
    assert call.payload.struct_value.fields["input"].struct_value.fields["title"].string_value


def test_plan_updated() -> None:
    plan = event_from_platform(11, BY_TYPE["plan_updated"]).plan
    assert plan == task_pb2.DeepPlanning(
        enabled=True,
        started=True,
        tasks=[
            task_pb2.DeepPlanningItem(id="s1", title="Read", completed=True),
            task_pb2.DeepPlanningItem(id="s2", title="Write"),
        ],
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {
                "type": "login_required",
                "data": {"url": "https://l", "server_url": "https://s", "server_name": "n"},
            },
            events_pb2.AuthEvent(
                type=events_pb2.AUTH_EVENT_TYPE_LOGIN_REQUIRED,
                type_name="login_required",
                url="https://l",
                server_url="https://s",
                server_name="n",
            ),
        ),
        (
            {"type": "token_ready", "data": {"access_token": "REDACTED"}},
            events_pb2.AuthEvent(
                type=events_pb2.AUTH_EVENT_TYPE_TOKEN_READY, type_name="token_ready", access_token="REDACTED"
            ),
        ),
        (
            {"type": "token_issue", "data": {"message": "expired"}},
            events_pb2.AuthEvent(
                type=events_pb2.AUTH_EVENT_TYPE_TOKEN_ISSUE, type_name="token_issue", message="expired"
            ),
        ),
        (
            {"type": "not_supported", "data": None},
            events_pb2.AuthEvent(type=events_pb2.AUTH_EVENT_TYPE_NOT_SUPPORTED, type_name="not_supported"),
        ),
        (
            {"type": "device_code", "data": {"message": "enter ABCD"}},
            events_pb2.AuthEvent(
                type=events_pb2.AUTH_EVENT_TYPE_UNSPECIFIED, type_name="device_code", message="enter ABCD"
            ),
        ),
    ],
)
def test_auth_event(data: dict[str, Any], expected: events_pb2.AuthEvent) -> None:
    assert event_from_platform(5, envelope("auth_event", data)).auth == expected


@pytest.mark.parametrize(
    ("kind", "number"),
    [
        ("retry", events_pb2.TASK_COMPACTIZATION_TYPE_RETRY),
        ("summarization", events_pb2.TASK_COMPACTIZATION_TYPE_SUMMARIZATION),
        ("compaction_started", events_pb2.TASK_COMPACTIZATION_TYPE_COMPACTION_STARTED),
        ("compaction_progress", events_pb2.TASK_COMPACTIZATION_TYPE_COMPACTION_PROGRESS),
        ("manual_compaction", events_pb2.TASK_COMPACTIZATION_TYPE_MANUAL_COMPACTION),
        ("emergency_compaction", events_pb2.TASK_COMPACTIZATION_TYPE_EMERGENCY_COMPACTION),
        ("pre_retry_compaction", events_pb2.TASK_COMPACTIZATION_TYPE_PRE_RETRY_COMPACTION),
        ("compaction_error", events_pb2.TASK_COMPACTIZATION_TYPE_COMPACTION_ERROR),
        ("defragmentation", events_pb2.TASK_COMPACTIZATION_TYPE_UNSPECIFIED),
    ],
)
def test_task_compactization(kind: str, number: events_pb2.TaskCompactizationType.ValueType) -> None:
    event = event_from_platform(
        12, envelope("task_compactization", {"type": kind, "data": {"is_retry": True}})
    )
    assert (event.compactization.type, event.compactization.type_name) == (number, kind)
    assert event.compactization.data["is_retry"] is True


def test_context_status() -> None:
    assert event_from_platform(13, BY_TYPE["context_status"]).context_status == events_pb2.ContextStatus(
        estimated_tokens=52000,
        context_window=200000,
        percent=26.0,
        auto_compact_threshold=80,
        emergency_threshold=95,
    )


def test_an_unknown_type_keeps_its_name_and_data() -> None:
    event = event_from_platform(
        30, envelope("memory_written", {"key": "k", "n": [1, 2]}, identity={"name": "M"})
    )
    assert event.type == events_pb2.TASK_EVENT_TYPE_UNSPECIFIED
    assert event.type_name == "memory_written"
    assert event.data == raw({"key": "k", "n": [1, 2]})
    assert event.identity.name == "M"


MALFORMED = [
    ("task_created", {"id": "t1"}),  # no agent_id, organization_id, input or created_at
    ("task_updated", "executing"),
    (
        "task_finished",
        {"id": "t1", "agent_id": "a", "organization_id": "o", "input": {}, "created_at": "soon"},
    ),
    ("sub_task_created", ["t2"]),
    ("chunk", {"text": "Hello"}),
    ("chunk", 42),
    ("tool_call_request", {"operation_id": "search"}),  # no request_id
    ("tool_call_result", {"request_id": "r", "operation_id": "o", "is_error": "no"}),
    ("think", "thinking…"),
    ("analyze", {"request_id": "r", "operation_id": "o", "reasoning": "because"}),
    ("plan_updated", {"tasks": "many"}),
    ("auth_event", {"data": {"url": "https://l"}}),  # no type
    ("auth_event", {"type": "token_ready", "data": "REDACTED"}),
    ("task_compactization", {"type": "retry", "data": [1]}),
    ("context_status", {"percent": "high"}),
    ("context_status", {"estimated_tokens": 1.5}),
]


@pytest.mark.parametrize(("type_name", "data"), MALFORMED)
def test_malformed_data_of_a_typed_event_falls_back_to_raw(type_name: str, data: Any) -> None:
    event = event_from_platform(3, envelope(type_name, copy.deepcopy(data)))
    assert event.WhichOneof("payload") is None
    assert event.data == raw(data)
    assert event.type_name == type_name


def test_null_and_missing_data() -> None:
    null = event_from_platform(1, envelope("task_created", None))
    assert null.WhichOneof("payload") is None
    assert null.data.WhichOneof("kind") == "null_value"
    missing = envelope("connected", None)
    del missing["data"]
    assert not event_from_platform(1, missing).HasField("data")


def test_a_broken_envelope_is_converted_as_far_as_it_goes() -> None:
    event = event_from_platform(
        9,
        {"type": 5, "task_id": None, "organization_id": ["o"], "time": "later", "identity": "x", "data": "d"},
    )
    assert event == events_pb2.TaskEvent(sequence=9, data=raw("d"))


@pytest.mark.parametrize("envelope_", [None, "task_created", ["task_created"], 3])
def test_an_envelope_that_is_not_an_object_is_a_payload_error(envelope_: Any) -> None:
    with pytest.raises(PayloadError):
        event_from_platform(1, envelope_)


def test_unknown_envelope_keys_are_ignored() -> None:
    event = event_from_platform(4, envelope("chunk", "x", id="e-4", retry=5, extra={"a": 1}))
    assert event == event_from_platform(4, envelope("chunk", "x"))


def test_heartbeat() -> None:
    before = time.time()
    event = heartbeat_event("t1", "org1", 17)
    after = time.time()
    assert (event.sequence, event.type, event.type_name) == (
        17,
        events_pb2.TASK_EVENT_TYPE_HEARTBEAT,
        "heartbeat",
    )
    assert (event.task_id, event.organization_id) == ("t1", "org1")
    assert before - 1e-6 <= event.time.seconds + event.time.nanos / 1e9 <= after + 1e-6
    assert event.WhichOneof("payload") is None
    assert not event.HasField("data")


def test_an_event_filled_into_a_response_equals_a_new_one() -> None:
    envelope = {
        "type": "chunk",
        "task_id": "t-1",
        "organization_id": "org-1",
        "time": "2026-11-25T09:43:34.187708Z",
        "data": "hello",
    }
    response = task_service_pb2.StreamEventsResponse()
    event_from_platform(7, envelope, into=response.event)
    assert response.event == event_from_platform(7, envelope)
    assert response.event.chunk == "hello"

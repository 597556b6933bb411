"""SSE event envelopes -> `TaskEvent`, with a typed payload where the platform's shape is known.

Event data never makes a conversion fail: when typed conversion of a known type does not fit, the raw `data`
is kept instead, and unknown types carry their raw `data` with `type_name` naming them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bridge.convert.enums import AUTH_EVENT_TYPE, TASK_COMPACTIZATION_TYPE, TASK_EVENT_TYPE
from bridge.convert.jsonvalue import fill_struct, fill_value
from bridge.convert.payload import (
    PayloadError,
    expect_bool,
    expect_dict,
    expect_float,
    expect_int,
    expect_str,
)
from bridge.convert.task import fill_deep_planning, fill_task
from bridge.convert.timestamps import fill_timestamp, now
from xpander.bridge.v1 import events_pb2

__all__ = ["event_from_platform", "heartbeat_event"]

HEARTBEAT_TYPE_NAME = "heartbeat"

_Fill = Callable[[events_pb2.TaskEvent, Any], None]
"""Sets an event's typed payload from its non-null `data`; raises PayloadError (or ValueError) when it does
not fit, after which the event's payload is cleared and the raw data kept."""


def event_from_platform(
    sequence: int, envelope: Mapping[str, Any], *, into: events_pb2.TaskEvent | None = None
) -> events_pb2.TaskEvent:
    """The TaskEvent of one envelope; PayloadError only when the envelope is not a JSON object.

    `into` is an empty TaskEvent to fill (e.g. a response's `event` field) instead of a new one: filling the
    message in place spares a copy per event.
    """
    if not isinstance(envelope, Mapping):
        raise PayloadError(f"expected an event envelope object, got {type(envelope).__name__}")
    event = into if into is not None else events_pb2.TaskEvent()
    event.sequence = sequence
    type_name = envelope.get("type")
    if type(type_name) is str:
        event.type_name = type_name
        event.type = TASK_EVENT_TYPE.by_wire.get(type_name, events_pb2.TASK_EVENT_TYPE_UNSPECIFIED)
    task_id = envelope.get("task_id")
    if type(task_id) is str:
        event.task_id = task_id
    organization_id = envelope.get("organization_id")
    if type(organization_id) is str:
        event.organization_id = organization_id
    time = envelope.get("time")
    if time is not None:
        try:
            fill_timestamp(event.time, "time", time)
        except PayloadError:
            event.ClearField("time")
    identity = envelope.get("identity")
    if type(identity) is dict:
        _fill_identity(event, identity)

    if "data" not in envelope:
        return event
    data = envelope["data"]
    fill = _PAYLOADS.get(event.type)
    if fill is not None and data is not None:
        try:
            fill(event, data)
            return event
        except ValueError:  # PayloadError, and protobuf's own refusals
            event.ClearField("payload")
    fill_value(event.data, data)
    return event


def heartbeat_event(task_id: str, organization_id: str, sequence: int) -> events_pb2.TaskEvent:
    """A bridge keep-alive for a silent stream; `sequence` repeats that of the last event sent."""
    return events_pb2.TaskEvent(
        sequence=sequence,
        type=events_pb2.TASK_EVENT_TYPE_HEARTBEAT,
        type_name=HEARTBEAT_TYPE_NAME,
        task_id=task_id,
        organization_id=organization_id,
        time=now(),
    )


def _fill_identity(event: events_pb2.TaskEvent, identity: dict[str, Any]) -> None:
    name = identity.get("name")
    if type(name) is not str:
        return
    event.identity.name = name
    icon = identity.get("icon")
    if type(icon) is str:
        event.identity.icon = icon


def _copy(
    target: Any, data: Mapping[str, Any], keys: tuple[str, ...], expect: Callable[[str, Any], Any]
) -> None:
    """Set on `target` each of `keys` that `data` holds and is not null, read with `expect`."""
    for key in keys:
        value = data.get(key)
        if value is not None:
            setattr(target, key, expect(key, value))


def _task(event: events_pb2.TaskEvent, data: Any) -> None:
    fill_task(event.task, data)


def _chunk(event: events_pb2.TaskEvent, data: Any) -> None:
    event.chunk = expect_str("data", data)


_TOOL_CALL_STRINGS = ("tool_call_id", "graph_node_id", "tool_name", "plan_task_id", "approval_request_id")


def _tool_call(event: events_pb2.TaskEvent, data: Any) -> None:
    data = expect_dict("data", data)
    call = event.tool_call
    call.request_id = expect_str("request_id", data.get("request_id"))
    call.operation_id = expect_str("operation_id", data.get("operation_id"))
    _copy(call, data, _TOOL_CALL_STRINGS, expect_str)
    payload = data.get("payload")
    if payload is not None:
        fill_value(call.payload, payload)
    result = data.get("result")
    if result is not None:
        fill_value(call.result, result)
    _copy(call, data, ("is_error",), expect_bool)
    reasoning = data.get("reasoning")
    if reasoning is not None:
        call.reasoning.SetInParent()
        _copy(call.reasoning, expect_dict("reasoning", reasoning), ("title", "description"), expect_str)


def _plan(event: events_pb2.TaskEvent, data: Any) -> None:
    event.plan.SetInParent()
    fill_deep_planning(event.plan, expect_dict("data", data))


_AUTH_STRINGS = ("url", "server_url", "server_name", "access_token", "message")


def _auth(event: events_pb2.TaskEvent, data: Any) -> None:
    data = expect_dict("data", data)
    auth = event.auth
    auth.type_name = expect_str("type", data.get("type"))
    auth.type = AUTH_EVENT_TYPE.by_wire.get(auth.type_name, events_pb2.AUTH_EVENT_TYPE_UNSPECIFIED)
    details = data.get("data")
    if details is None:
        return
    _copy(auth, expect_dict("data", details), _AUTH_STRINGS, expect_str)


def _compactization(event: events_pb2.TaskEvent, data: Any) -> None:
    data = expect_dict("data", data)
    compactization = event.compactization
    compactization.type_name = expect_str("type", data.get("type"))
    compactization.type = TASK_COMPACTIZATION_TYPE.by_wire.get(
        compactization.type_name, events_pb2.TASK_COMPACTIZATION_TYPE_UNSPECIFIED
    )
    details = data.get("data")
    if details is not None:
        fill_struct(compactization.data, expect_dict("data", details))


_CONTEXT_INTS = ("estimated_tokens", "context_window", "auto_compact_threshold", "emergency_threshold")


def _context_status(event: events_pb2.TaskEvent, data: Any) -> None:
    data = expect_dict("data", data)
    status = event.context_status
    status.SetInParent()
    _copy(status, data, _CONTEXT_INTS, expect_int)
    _copy(status, data, ("percent",), expect_float)
    _copy(status, data, ("compacting",), expect_bool)


_V = events_pb2
_PAYLOADS: dict[int, _Fill] = {
    _V.TASK_EVENT_TYPE_TASK_CREATED: _task,
    _V.TASK_EVENT_TYPE_TASK_UPDATED: _task,
    _V.TASK_EVENT_TYPE_TASK_FINISHED: _task,
    _V.TASK_EVENT_TYPE_SUB_TASK_CREATED: _task,
    _V.TASK_EVENT_TYPE_SUB_TASK_UPDATED: _task,
    _V.TASK_EVENT_TYPE_SUB_TASK_FINISHED: _task,
    _V.TASK_EVENT_TYPE_CHUNK: _chunk,
    _V.TASK_EVENT_TYPE_TOOL_CALL_REQUEST: _tool_call,
    _V.TASK_EVENT_TYPE_TOOL_CALL_RESULT: _tool_call,
    _V.TASK_EVENT_TYPE_THINK: _tool_call,
    _V.TASK_EVENT_TYPE_ANALYZE: _tool_call,
    _V.TASK_EVENT_TYPE_PLAN_UPDATED: _plan,
    _V.TASK_EVENT_TYPE_AUTH_EVENT: _auth,
    _V.TASK_EVENT_TYPE_TASK_COMPACTIZATION: _compactization,
    _V.TASK_EVENT_TYPE_CONTEXT_STATUS: _context_status,
}

"""Platform Task JSON and task list items -> `Task`.

Unknown keys are ignored, `null` means unset, unknown enum strings become *_UNSPECIFIED with the raw string
kept in `unrecognized_enum_values`; a value of the wrong JSON type raises PayloadError naming its key.
Each message has a table from JSON key to setter; the JSON key is the proto field name throughout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from google.protobuf import struct_pb2

from bridge.convert import enums
from bridge.convert.jsonvalue import fill_struct
from bridge.convert.payload import (
    PayloadError,
    expect_bool,
    expect_dict,
    expect_float,
    expect_int,
    expect_list,
    expect_str,
)
from bridge.convert.timestamps import fill_timestamp
from xpander.bridge.v1 import task_pb2

__all__ = ["fill_deep_planning", "fill_task", "task_from_list_item", "task_from_platform"]

_E = TypeVar("_E", bound=int)
_Setter = Callable[[Any, str, Any], None]
"""Sets the field named like the JSON key on a message from a non-null JSON value."""
_Setters = Mapping[str, _Setter]


def task_from_platform(data: Mapping[str, Any]) -> task_pb2.Task:
    """The Task of a platform Task JSON object; PayloadError on a missing required key or a wrong type."""
    task = task_pb2.Task()
    fill_task(task, data)
    return task


def task_from_list_item(data: Mapping[str, Any]) -> task_pb2.Task:
    """The Task of one element of a task-history array (TasksListItem: the keys the listing carries)."""
    task = task_pb2.Task()
    _fill_checked(task, data, _LIST_ITEM_SETTERS, _LIST_ITEM_REQUIRED, "task list item")
    return task


def fill_task(task: task_pb2.Task, data: Mapping[str, Any]) -> None:
    """Fill an empty `task` from a platform Task JSON object (see task_from_platform)."""
    _fill_checked(task, data, _TASK_SETTERS, _TASK_REQUIRED, "task")


def fill_deep_planning(plan: task_pb2.DeepPlanning, data: Mapping[str, Any]) -> None:
    """Fill `plan` from a DeepPlanning JSON object."""
    _fill(plan, data, _DEEP_PLANNING_SETTERS)


def _fill_checked(
    task: task_pb2.Task, data: Mapping[str, Any], setters: _Setters, required: tuple[str, ...], what: str
) -> None:
    if not isinstance(data, Mapping):
        raise PayloadError(f"expected a {what} object, got {type(data).__name__}")
    for key in required:
        if data.get(key) is None:
            raise PayloadError("is required", key=key)
    _fill(task, data, setters)


def _fill(message: Any, data: Mapping[str, Any], setters: _Setters) -> None:
    key = ""
    try:
        for key, value in data.items():
            setter = setters.get(key)
            if setter is not None and value is not None:
                setter(message, key, value)
    except PayloadError:
        raise
    except (ValueError, TypeError) as error:
        # protobuf refuses what JSON allows in a few corners (lone surrogates in strings, for one).
        raise PayloadError(f"cannot be represented: {error}", key=key) from error


def _set_str(message: Any, key: str, value: Any) -> None:
    setattr(message, key, expect_str(key, value))


def _set_quirk_str(message: Any, key: str, value: Any) -> None:
    # Platforms saving tasks from SDK v2.0.266 may echo these keys list-wrapped (`[null]`).
    if type(value) is list and len(value) == 1:
        value = value[0]
        if value is None:
            return
    setattr(message, key, expect_str(key, value))


def _set_bool(message: Any, key: str, value: Any) -> None:
    setattr(message, key, expect_bool(key, value))


def _set_int(message: Any, key: str, value: Any) -> None:
    setattr(message, key, expect_int(key, value))


def _set_float(message: Any, key: str, value: Any) -> None:
    setattr(message, key, expect_float(key, value))


def _set_timestamp(message: Any, key: str, value: Any) -> None:
    fill_timestamp(getattr(message, key), key, value)


def _set_struct(message: Any, key: str, value: Any) -> None:
    obj = expect_dict(key, value)
    struct: struct_pb2.Struct = getattr(message, key)
    struct.SetInParent()
    try:
        fill_struct(struct, obj)
    except PayloadError as error:
        raise error.within(key) from None


def _set_str_list(message: Any, key: str, value: Any) -> None:
    items = expect_list(key, value)
    for index, item in enumerate(items):
        expect_str(f"{key}[{index}]", item)
    getattr(message, key).extend(items)


def _set_str_map(message: Any, key: str, value: Any) -> None:
    target = getattr(message, key)
    for name, item in expect_dict(key, value).items():
        target[name] = expect_str(f"{key}.{name}", item)


def _enum_setter(table: enums.EnumTable[_E]) -> _Setter:
    by_wire = table.by_wire

    def set_enum(message: Any, key: str, value: Any) -> None:
        string = expect_str(key, value)
        number = by_wire.get(string)
        if number is None:
            message.unrecognized_enum_values[key] = string
        else:
            setattr(message, key, number)

    return set_enum


def _nested(setters: _Setters) -> _Setter:
    """A setter filling a sub-message from a JSON object, with errors keyed from the parent."""

    def set_nested(message: Any, key: str, value: Any) -> None:
        obj = expect_dict(key, value)
        child = getattr(message, key)
        child.SetInParent()
        try:
            _fill(child, obj, setters)
        except PayloadError as error:
            raise error.within(key) from None

    return set_nested


def _repeated(setters: _Setters) -> _Setter:
    """A setter appending one sub-message per object of a JSON array."""

    def set_repeated(message: Any, key: str, value: Any) -> None:
        items = expect_list(key, value)
        # The same SDK v2.0.266 quirk can wrap an empty list once more.
        if items == [[]]:
            return
        container = getattr(message, key)
        for index, item in enumerate(items):
            try:
                _fill(container.add(), expect_dict("", item), setters)
            except PayloadError as error:
                raise error.within(f"[{index}]").within(key) from None

    return set_repeated


_USER_SETTERS: dict[str, _Setter] = {
    "id": _set_str,
    "email": _set_str,
    "first_name": _set_str,
    "last_name": _set_str,
    "timezone": _set_str,
    "additional_attributes": _set_struct,
}

_ATTACHMENT_SETTERS: dict[str, _Setter] = {
    "url": _set_str,
    "name": _set_str,
    "mime": _set_str,
    "size": _set_int,
    "kind": _enum_setter(enums.ATTACHMENT_KIND),
    "sha256": _set_str,
    "expires_at": _set_str,
    "source": _set_str,
    "transcript": _set_str,
}

_PRINCIPAL_SETTERS: dict[str, _Setter] = {
    "kind": _enum_setter(enums.PRINCIPAL_KIND),
    "id": _set_str,
    "email": _set_str,
    "display_name": _set_str,
}

_INPUT_SETTERS: dict[str, _Setter] = {
    "text": _set_str,
    "files": _set_str_list,
    "user": _nested(_USER_SETTERS),
    "attachments": _repeated(_ATTACHMENT_SETTERS),
    "principal": _nested(_PRINCIPAL_SETTERS),
}

_MCP_SERVER_SETTERS: dict[str, _Setter] = {
    "id": _set_str,
    "type": _enum_setter(enums.MCP_SERVER_TYPE),
    "name": _set_str,
    "command": _set_str,
    "url": _set_str,
    "transport": _enum_setter(enums.MCP_SERVER_TRANSPORT),
    "auth_type": _enum_setter(enums.MCP_SERVER_AUTH_TYPE),
    "api_key": _set_str,
    "use_secrets_manager": _set_bool,
    "client_id": _set_str,
    "client_secret": _set_str,
    "headers": _set_str_map,
    "env_vars": _set_str_map,
    "allowed_tools": _set_str_list,
    "additional_scopes": _set_str_list,
    "share_user_token_across_other_agents": _set_bool,
    "sso_token": _enum_setter(enums.MCP_SERVER_SSO_TOKEN_MODE),
    "sso_audience": _set_str,
}

_set_token_counts = _nested(
    {
        "completion_tokens": _set_int,
        "prompt_tokens": _set_int,
        "cache_read_tokens": _set_int,
        "cache_write_tokens": _set_int,
        "total_tokens": _set_int,
    }
)


def _set_tokens(task: task_pb2.Task, key: str, value: Any) -> None:
    _set_token_counts(task, key, value)
    if value.get("total_tokens") is None:
        # The SDK always serialises the computed total; recompute it when a producer left it out.
        task.tokens.total_tokens = task.tokens.completion_tokens + task.tokens.prompt_tokens


_DEEP_PLANNING_SETTERS: dict[str, _Setter] = {
    "enabled": _set_bool,
    "enforce": _set_bool,
    "started": _set_bool,
    "question_raised": _set_bool,
    "tasks": _repeated({"id": _set_str, "title": _set_str, "completed": _set_bool}),
}

_TASK_SETTERS: dict[str, _Setter] = {
    "id": _set_str,
    "agent_id": _set_str,
    "organization_id": _set_str,
    "input": _nested(_INPUT_SETTERS),
    "status": _enum_setter(enums.TASK_STATUS),
    "internal_status": _set_str,
    "last_executed_node_id": _set_str,
    "agent_version": _set_str,
    "created_at": _set_timestamp,
    "started_at": _set_timestamp,
    "paused_at": _set_timestamp,
    "finished_at": _set_timestamp,
    "result": _set_str,
    "parent_execution": _set_str,
    "conversation_id": _set_str,
    "conversation_kind": _set_str,
    "sub_executions": _set_str_list,
    "should_update_parent": _set_bool,
    "is_manually_stopped": _set_bool,
    "payload_extension": _set_struct,
    "execution_kind": _set_str,
    "hitl_request": _nested({"wait_node_id": _set_str}),
    "pending_eca_request": _nested({"connector_name": _set_str, "auth_url": _set_str}),
    "source": _set_str,
    "voice_id": _set_str,
    "output_format": _enum_setter(enums.OUTPUT_FORMAT),
    "output_schema": _set_struct,
    "events_streaming": _set_bool,
    "is_orchestration": _set_bool,
    "is_gateway": _set_bool,
    "is_app": _set_bool,
    "background_auth_eligible": _set_bool,
    "additional_context": _set_str,
    "tool_call_limit": _set_int,
    "instructions_override": _set_str,
    "test_run_node_id": _set_str,
    "user_oidc_token": _set_str,
    "expected_output": _set_quirk_str,
    "mcp_servers": _repeated(_MCP_SERVER_SETTERS),
    "triggering_agent_id": _set_quirk_str,
    "title": _set_quirk_str,
    "think_mode": _enum_setter(enums.THINK_MODE),
    "disable_attachment_injection": _set_bool,
    "user_tokens": _set_struct,
    "deep_planning": _nested(_DEEP_PLANNING_SETTERS),
    "must_deep_plan": _set_bool,
    "execution_attempts": _set_int,
    "return_metrics": _set_bool,
    "llm_model_provider": _set_str,
    "llm_model_name": _set_str,
    "llm_reasoning_effort": _enum_setter(enums.LLM_REASONING_EFFORT),
    "harness_cli": _set_str,
    "permission_mode": _set_str,
    "tokens": _set_tokens,
    "used_tools": _set_str_list,
    "duration": _set_float,
    # Keys of list items; accepted on full tasks too should the platform start sending them.
    "user_id": _set_str,
    "parent_task_id": _set_str,
    "updated_at": _set_timestamp,
    "source_node_type": _set_str,
    "process": _set_struct,
}
_TASK_REQUIRED = ("id", "agent_id", "organization_id", "input", "created_at")

_LIST_ITEM_SETTERS: dict[str, _Setter] = {
    key: _TASK_SETTERS[key]
    for key in (
        "id",
        "agent_id",
        "organization_id",
        "status",
        "user_id",
        "parent_task_id",
        "triggering_agent_id",
        "created_at",
        "updated_at",
        "source_node_type",
        "result",
        "title",
        "execution_kind",
        "process",
        "conversation_kind",
    )
}
_LIST_ITEM_REQUIRED = ("id", "agent_id", "organization_id", "status")

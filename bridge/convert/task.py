"""Platform Task JSON (§3) and task list items (§4.2) -> `Task`.

Unknown keys are ignored, `null` means unset, unknown enum strings become *_UNSPECIFIED with the raw string
kept in `unrecognized_enum_values`; a value of the wrong JSON type raises PayloadError naming its key.
Each key is dispatched through a table of setters, so a snapshot costs one dict lookup per key present.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from google.protobuf import struct_pb2

from bridge.convert.enums import (
    ATTACHMENT_KIND,
    LLM_REASONING_EFFORT,
    MCP_SERVER_AUTH_TYPE,
    MCP_SERVER_SSO_TOKEN_MODE,
    MCP_SERVER_TRANSPORT,
    MCP_SERVER_TYPE,
    OUTPUT_FORMAT,
    PRINCIPAL_KIND,
    TASK_STATUS,
    THINK_MODE,
    EnumTable,
)
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


def task_from_platform(data: Mapping[str, Any]) -> task_pb2.Task:
    """The Task of a platform Task JSON object; PayloadError on a missing required key or a wrong type."""
    task = task_pb2.Task()
    fill_task(task, data)
    return task


def task_from_list_item(data: Mapping[str, Any]) -> task_pb2.Task:
    """The Task of one element of a task-history array (TasksListItem: the keys the listing carries)."""
    task = task_pb2.Task()
    _fill(task, data, _LIST_ITEM_SETTERS, _LIST_ITEM_REQUIRED, "task list item")
    return task


def fill_task(task: task_pb2.Task, data: Mapping[str, Any]) -> None:
    """Fill an empty `task` from a platform Task JSON object (see task_from_platform)."""
    _fill(task, data, _TASK_SETTERS, _TASK_REQUIRED, "task")


def _fill(
    message: task_pb2.Task,
    data: Mapping[str, Any],
    setters: Mapping[str, _Setter],
    required: tuple[str, ...],
    what: str,
) -> None:
    if not isinstance(data, Mapping):
        raise PayloadError(f"expected a {what} object, got {type(data).__name__}")
    for key in required:
        if data.get(key) is None:
            raise PayloadError("is required", key=key)
    _fill_plain(message, data, setters)


def _fill_plain(message: Any, data: Mapping[str, Any], setters: Mapping[str, _Setter]) -> None:
    key = ""
    try:
        for key, value in data.items():
            if value is None:
                continue
            setter = setters.get(key)
            if setter is None:
                continue
            # Strings and booleans are most keys of a snapshot: set them here, without two more calls each.
            if (setter is _set_str and type(value) is str) or (
                setter is _set_bool and (value is True or value is False)
            ):
                setattr(message, key, value)
            else:
                setter(message, key, value)
    except PayloadError:
        raise
    except (ValueError, TypeError) as error:
        # protobuf refuses what JSON allows in a few corners (lone surrogates in strings, for one).
        raise PayloadError(f"cannot be represented: {error}", key=key) from error


# Setters, one per JSON type of field; the JSON key is the proto field name throughout §3.1.


def _set_str(message: Any, key: str, value: Any) -> None:
    setattr(message, key, expect_str(key, value))


def _set_quirk_str(message: Any, key: str, value: Any) -> None:
    # Platforms saving tasks from SDK v2.0.266 may echo these keys list-wrapped (`[null]`), see §3.4.
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
    struct: struct_pb2.Struct = getattr(message, key)
    struct.SetInParent()
    try:
        fill_struct(struct, expect_dict(key, value))
    except PayloadError as error:
        raise error.within(key) if error.key != key else error from None


def _set_str_list(message: Any, key: str, value: Any) -> None:
    items = expect_list(key, value)
    for index, item in enumerate(items):
        if type(item) is not str:
            expect_str(f"{key}[{index}]", item)
    getattr(message, key).extend(items)


def _enum_setter(table: EnumTable[_E]) -> _Setter:
    by_wire = table.by_wire

    def set_enum(message: Any, key: str, value: Any) -> None:
        string = expect_str(key, value)
        number = by_wire.get(string)
        if number is None:
            message.unrecognized_enum_values[key] = string
        else:
            setattr(message, key, number)

    return set_enum


def _nested(fill: Callable[[Any, dict[str, Any]], None]) -> _Setter:
    """A setter filling a sub-message from a JSON object, with errors keyed from the parent."""

    def set_nested(message: Any, key: str, value: Any) -> None:
        child = getattr(message, key)
        child.SetInParent()
        try:
            fill(child, expect_dict(key, value))
        except PayloadError as error:
            raise (error if error.key == key else error.within(key)) from None

    return set_nested


def _repeated(fill: Callable[[Any, dict[str, Any]], None]) -> _Setter:
    """A setter appending one sub-message per object of a JSON array."""

    def set_repeated(message: Any, key: str, value: Any) -> None:
        # The SDK v2.0.266 quirk of §3.4 can wrap an empty list once more: `[[]]`.
        items = expect_list(key, value)
        if len(items) == 1 and items[0] == []:
            return
        container = getattr(message, key)
        for index, item in enumerate(items):
            try:
                fill(container.add(), expect_dict("", item))
            except PayloadError as error:
                raise error.within(f"[{index}]").within(key) from None

    return set_repeated


def _fill_user(user: task_pb2.User, data: dict[str, Any]) -> None:
    _fill_plain(user, data, _USER_SETTERS)


def _fill_attachment(attachment: task_pb2.Attachment, data: dict[str, Any]) -> None:
    _fill_plain(attachment, data, _ATTACHMENT_SETTERS)


def _fill_principal(principal: task_pb2.Principal, data: dict[str, Any]) -> None:
    _fill_plain(principal, data, _PRINCIPAL_SETTERS)


def _fill_input(task_input: task_pb2.TaskInput, data: dict[str, Any]) -> None:
    _fill_plain(task_input, data, _INPUT_SETTERS)


def _fill_mcp_server(server: task_pb2.MCPServerDetails, data: dict[str, Any]) -> None:
    _fill_plain(server, data, _MCP_SERVER_SETTERS)


def _fill_tokens(tokens: task_pb2.Tokens, data: dict[str, Any]) -> None:
    _fill_plain(tokens, data, _TOKENS_SETTERS)
    if data.get("total_tokens") is None:
        # The SDK always serialises the computed total; recompute it when a producer left it out.
        tokens.total_tokens = tokens.completion_tokens + tokens.prompt_tokens


def _fill_deep_planning_item(item: task_pb2.DeepPlanningItem, data: dict[str, Any]) -> None:
    _fill_plain(item, data, _DEEP_PLANNING_ITEM_SETTERS)


def fill_deep_planning(plan: task_pb2.DeepPlanning, data: dict[str, Any]) -> None:
    """Fill `plan` from a DeepPlanning JSON object (§3.3)."""
    _fill_plain(plan, data, _DEEP_PLANNING_SETTERS)


def _fill_hitl(request: task_pb2.HumanInTheLoopRequest, data: dict[str, Any]) -> None:
    _fill_plain(request, data, _HITL_SETTERS)


def _fill_eca(request: task_pb2.PendingECARequest, data: dict[str, Any]) -> None:
    _fill_plain(request, data, _ECA_SETTERS)


def _set_headers(message: Any, key: str, value: Any) -> None:
    target = getattr(message, key)
    for name, item in expect_dict(key, value).items():
        target[name] = expect_str(f"{key}.{name}", item)


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
    "kind": _enum_setter(ATTACHMENT_KIND),
    "sha256": _set_str,
    "expires_at": _set_str,
    "source": _set_str,
    "transcript": _set_str,
}

_PRINCIPAL_SETTERS: dict[str, _Setter] = {
    "kind": _enum_setter(PRINCIPAL_KIND),
    "id": _set_str,
    "email": _set_str,
    "display_name": _set_str,
}

_INPUT_SETTERS: dict[str, _Setter] = {
    "text": _set_str,
    "files": _set_str_list,
    "user": _nested(_fill_user),
    "attachments": _repeated(_fill_attachment),
    "principal": _nested(_fill_principal),
}

_MCP_SERVER_SETTERS: dict[str, _Setter] = {
    "id": _set_str,
    "type": _enum_setter(MCP_SERVER_TYPE),
    "name": _set_str,
    "command": _set_str,
    "url": _set_str,
    "transport": _enum_setter(MCP_SERVER_TRANSPORT),
    "auth_type": _enum_setter(MCP_SERVER_AUTH_TYPE),
    "api_key": _set_str,
    "use_secrets_manager": _set_bool,
    "client_id": _set_str,
    "client_secret": _set_str,
    "headers": _set_headers,
    "env_vars": _set_headers,
    "allowed_tools": _set_str_list,
    "additional_scopes": _set_str_list,
    "share_user_token_across_other_agents": _set_bool,
    "sso_token": _enum_setter(MCP_SERVER_SSO_TOKEN_MODE),
    "sso_audience": _set_str,
}

_TOKENS_SETTERS: dict[str, _Setter] = {
    "completion_tokens": _set_int,
    "prompt_tokens": _set_int,
    "cache_read_tokens": _set_int,
    "cache_write_tokens": _set_int,
    "total_tokens": _set_int,
}

_DEEP_PLANNING_ITEM_SETTERS: dict[str, _Setter] = {"id": _set_str, "title": _set_str, "completed": _set_bool}

_DEEP_PLANNING_SETTERS: dict[str, _Setter] = {
    "enabled": _set_bool,
    "enforce": _set_bool,
    "started": _set_bool,
    "question_raised": _set_bool,
    "tasks": _repeated(_fill_deep_planning_item),
}

_HITL_SETTERS: dict[str, _Setter] = {"wait_node_id": _set_str}
_ECA_SETTERS: dict[str, _Setter] = {"connector_name": _set_str, "auth_url": _set_str}

_TASK_SETTERS: dict[str, _Setter] = {
    "id": _set_str,
    "agent_id": _set_str,
    "organization_id": _set_str,
    "input": _nested(_fill_input),
    "status": _enum_setter(TASK_STATUS),
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
    "hitl_request": _nested(_fill_hitl),
    "pending_eca_request": _nested(_fill_eca),
    "source": _set_str,
    "voice_id": _set_str,
    "output_format": _enum_setter(OUTPUT_FORMAT),
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
    "mcp_servers": _repeated(_fill_mcp_server),
    "triggering_agent_id": _set_quirk_str,
    "title": _set_quirk_str,
    "think_mode": _enum_setter(THINK_MODE),
    "disable_attachment_injection": _set_bool,
    "user_tokens": _set_struct,
    "deep_planning": _nested(fill_deep_planning),
    "must_deep_plan": _set_bool,
    "execution_attempts": _set_int,
    "return_metrics": _set_bool,
    "llm_model_provider": _set_str,
    "llm_model_name": _set_str,
    "llm_reasoning_effort": _enum_setter(LLM_REASONING_EFFORT),
    "harness_cli": _set_str,
    "permission_mode": _set_str,
    "tokens": _nested(_fill_tokens),
    "used_tools": _set_str_list,
    "duration": _set_float,
    # Keys of list items (§4.2); accepted on full tasks too should the platform start sending them.
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

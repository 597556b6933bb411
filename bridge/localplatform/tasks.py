"""The Task JSON document the local platform keeps and returns, and its list-item form."""

from __future__ import annotations

from typing import Any

from bridge.localplatform.bodies import CreateTaskBody

__all__ = ["FILTER_KEYS", "list_item", "matches", "new_task", "start_new_run"]

# Keys a create body carries that the Task echoes under the same name.
_ECHOED = (
    "payload_extension",
    "source",
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
    "user_tokens",
    "return_metrics",
    "tool_call_limit",
    "llm_model_provider",
    "llm_model_name",
    "llm_reasoning_effort",
    "harness_cli",
    "permission_mode",
)
# What a continued task always takes from its new create body; other keys keep their value unless set.
_PER_RUN = frozenset({"output_format", "output_schema", "events_streaming"})

FILTER_KEYS = ("user_id", "parent_task_id", "triggering_agent_id", "status", "internal_status")


def new_task(
    *,
    task_id: str,
    agent_id: str,
    organization_id: str,
    body: CreateTaskBody,
    agent_version: str | None,
    now: str,
) -> dict[str, Any]:
    """A freshly created Task with every Task field present, status `pending`."""
    sent = body.model_dump(mode="json")
    task: dict[str, Any] = {
        "id": task_id,
        "agent_id": agent_id,
        "organization_id": organization_id,
        "input": sent["input"],
        "status": "pending",
        "internal_status": None,
        "last_executed_node_id": None,
        "agent_version": agent_version,
        "created_at": now,
        "started_at": None,
        "paused_at": None,
        "finished_at": None,
        "result": None,
        "parent_execution": None,
        "conversation_id": task_id,
        "conversation_kind": None,
        "sub_executions": [],
        "should_update_parent": False,
        "is_manually_stopped": False,
        "execution_kind": "turn",
        "hitl_request": None,
        "pending_eca_request": None,
        "voice_id": None,
        "is_orchestration": False,
        "is_gateway": False,
        "is_app": False,
        "background_auth_eligible": False,
        "deep_planning": {
            "enabled": False,
            "enforce": False,
            "started": False,
            "question_raised": False,
            "tasks": [],
        },
        "must_deep_plan": False,
        "execution_attempts": 1,
        "tokens": None,
        "used_tools": [],
        "duration": 0.0,
    }
    for key in _ECHOED:
        task[key] = sent[key]
    if task["mcp_servers"] is None:
        task["mcp_servers"] = []  # never null: SDK 2.0.266 mangles a missing/null list on its next save
    return task


def start_new_run(task: dict[str, Any], body: CreateTaskBody, agent_version: str | None) -> None:
    """Reset a task for a continuation (`id` in the create body): same id, new input, back to `pending`."""
    sent = body.model_dump(mode="json")
    task["input"] = sent["input"]
    for key in _ECHOED:
        if key in _PER_RUN or sent[key] is not None:
            task[key] = sent[key]
    if agent_version is not None:
        task["agent_version"] = agent_version
    task.update(
        status="pending",
        started_at=None,
        paused_at=None,
        finished_at=None,
        result=None,
        is_manually_stopped=False,
        tokens=None,
        used_tools=[],
        duration=0.0,
    )


def _user_id(task: dict[str, Any]) -> str | None:
    user = task["input"].get("user")
    return user.get("id") if user else None


def matches(task: dict[str, Any], filters: dict[str, str]) -> bool:
    """Whether a task passes the list filters: each given key must equal exactly."""
    for key, wanted in filters.items():
        if key == "user_id":
            actual = _user_id(task)
        elif key == "parent_task_id":
            actual = task["parent_execution"]
        else:
            actual = task[key]
        if actual != wanted:
            return False
    return True


def list_item(task: dict[str, Any], updated_at: str) -> dict[str, Any]:
    """The task as the history routes list it (TasksListItem)."""
    return {
        "id": task["id"],
        "agent_id": task["agent_id"],
        "organization_id": task["organization_id"],
        "status": task["status"],
        "user_id": _user_id(task),
        "parent_task_id": task["parent_execution"],
        "triggering_agent_id": task["triggering_agent_id"],
        "created_at": task["created_at"],
        "updated_at": updated_at,
        "source_node_type": task["source"],
        "result": task["result"],
        "title": task["title"],
        "execution_kind": None,  # only "resident" processes are marked in lists; these are plain turns
        "process": None,
        "conversation_kind": task["conversation_kind"],
    }

"""ListTasksRequest -> the platform's task-history route and query; paging stays with the caller.

The routes are those of docs/platform-contract.md §4.2.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import quote

from bridge.convert.enums import TASK_STATUS
from bridge.convert.validation import id_problem, invalid_argument
from bridge.errors import FieldViolation
from xpander.bridge.v1 import task_service_pb2

__all__ = ["ListTasksCall", "list_tasks_to_platform"]


class ListTasksCall(NamedTuple):
    """What `GET {path}?{query}` asks the platform: a route relative to the REST prefix and its filters."""

    path: str
    query: dict[str, str]


def list_tasks_to_platform(request: task_service_pb2.ListTasksRequest) -> ListTasksCall:
    """The agent's history route (filtered by user when both are set) or the user's history route.

    Raises InvalidArgument when neither id is set, an id is not one URL path segment or the status is unknown;
    ids are validated and percent-encoded as every RPC's are (`validation.id_problem`).
    `page_size` and `page_token` are not read: the platform returns whole arrays, which the caller pages.
    """
    violations: list[FieldViolation] = []
    agent_id, user_id = request.agent_id, request.user_id
    if not agent_id and not user_id:
        violations.append(FieldViolation("agent_id", "agent_id or user_id is required"))
        violations.append(FieldViolation("user_id", "agent_id or user_id is required"))
    for field, value in (("agent_id", agent_id), ("user_id", user_id)):
        problem = id_problem(value) if value else None
        if problem is not None:
            violations.append(FieldViolation(field, problem))

    query: dict[str, str] = {}
    # Percent-encoded like every other id in a path (characters such as `;` or `@` mean something to
    # some servers and proxies); the query string is encoded by the HTTP client.
    if agent_id:
        path = f"agent-execution/executions/history/{quote(agent_id, safe='')}"
        if user_id:
            query["user_id"] = user_id
    else:
        path = f"agent-execution/executions/history/user/{quote(user_id, safe='')}"
    if request.parent_task_id:
        query["parent_task_id"] = request.parent_task_id
    if request.triggering_agent_id:
        query["triggering_agent_id"] = request.triggering_agent_id
    if request.status:
        status = TASK_STATUS.wire.get(request.status)
        if status is None:
            violations.append(FieldViolation("status", f"has unknown value {request.status}"))
        else:
            query["status"] = status
    if request.internal_status:
        query["internal_status"] = request.internal_status
    if violations:
        raise invalid_argument(violations)
    return ListTasksCall(path, query)

"""ListTasksRequest -> the platform's task-history route and query."""

from __future__ import annotations

import pytest

from bridge.convert import ListTasksCall, list_tasks_to_platform
from bridge.errors import InvalidArgument
from xpander.bridge.v1 import task_pb2, task_service_pb2

Request = task_service_pb2.ListTasksRequest


def test_an_agents_tasks() -> None:
    assert list_tasks_to_platform(Request(agent_id="a1")) == ListTasksCall(
        "agent-execution/executions/history/a1", {}
    )


def test_an_agents_tasks_for_one_user_with_every_filter() -> None:
    request = Request(
        agent_id="a1",
        user_id="u1",
        parent_task_id="t0",
        triggering_agent_id="a0",
        status=task_pb2.TASK_STATUS_COMPLETED,
        internal_status="reviewed",
        page_size=10,
        page_token="opaque",
    )
    assert list_tasks_to_platform(request) == ListTasksCall(
        "agent-execution/executions/history/a1",
        {
            "user_id": "u1",
            "parent_task_id": "t0",
            "triggering_agent_id": "a0",
            "status": "completed",
            "internal_status": "reviewed",
        },
    )


def test_a_users_tasks() -> None:
    request = Request(user_id="u1", status=task_pb2.TASK_STATUS_PAUSED)
    assert list_tasks_to_platform(request) == ListTasksCall(
        "agent-execution/executions/history/user/u1", {"status": "paused"}
    )


@pytest.mark.parametrize(
    ("request_", "fields"),
    [
        (Request(), {"agent_id", "user_id"}),
        (Request(status=task_pb2.TASK_STATUS_PENDING), {"agent_id", "user_id"}),
        (Request(agent_id="../a"), {"agent_id"}),
        (Request(user_id="u/1"), {"user_id"}),
        (Request(agent_id="a", user_id="u?x=1"), {"user_id"}),
        (Request(agent_id="a", status=task_pb2.TaskStatus.ValueType(77)), {"status"}),
        (Request(agent_id="a b", user_id="%2e%2e"), {"agent_id", "user_id"}),
    ],
)
def test_invalid_requests_name_the_fields(request_: Request, fields: set[str]) -> None:
    with pytest.raises(InvalidArgument) as caught:
        list_tasks_to_platform(request_)
    assert {v.field for v in caught.value.field_violations} == fields

"""Create, get, stop, update and list tasks over HTTP, as the SDK calls them."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx

from tests.localplatform.helpers import ORG, create, wait_status

# Every Task field: the SDK parses a Task with any subset, but the bridge and HEAD clients rely on them.
TASK_FIELDS = {
    "id", "agent_id", "organization_id", "input", "status", "internal_status", "last_executed_node_id",
    "agent_version", "created_at", "started_at", "paused_at", "finished_at", "result", "parent_execution",
    "conversation_id", "conversation_kind", "sub_executions", "should_update_parent", "is_manually_stopped",
    "payload_extension", "execution_kind", "hitl_request", "pending_eca_request", "source", "voice_id",
    "output_format", "output_schema", "events_streaming", "is_orchestration", "is_gateway", "is_app",
    "background_auth_eligible", "additional_context", "tool_call_limit", "instructions_override",
    "test_run_node_id", "user_oidc_token", "expected_output", "mcp_servers", "triggering_agent_id", "title",
    "think_mode", "disable_attachment_injection", "user_tokens", "deep_planning", "must_deep_plan",
    "execution_attempts", "return_metrics", "llm_model_provider", "llm_model_name", "llm_reasoning_effort",
    "harness_cli", "permission_mode", "tokens", "used_tools", "duration",
}  # fmt: skip
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

FULL_BODY: dict[str, Any] = {
    "id": None,
    "input": {
        "text": "Summarise the report",
        "files": ["https://example.com/r.pdf"],
        "user": {"id": "u1", "first_name": "Ada", "last_name": None, "email": "u@example.com",
                 "additional_attributes": {"team": "x"}, "timezone": "UTC"},
        "attachments": [{"url": "https://example.com/r.pdf", "kind": "pdf", "size": 10}],
        "principal": {"kind": "user", "id": "u1", "email": "u@example.com", "display_name": None},
    },
    "payload_extension": {"trace": "1"}, "source": "sdk", "worker_id": "w1", "output_format": "markdown",
    "output_schema": None, "run_locally": False, "events_streaming": True, "additional_context": "ctx",
    "instructions_override": "brief", "test_run_node_id": "n1", "user_oidc_token": "oidc",
    "expected_output": "a summary",
    "mcp_servers": [{"name": "docs", "url": "https://mcp.example.com", "type": "remote"}],
    "triggering_agent_id": "agent-0", "title": "Report", "think_mode": "harder",
    "disable_attachment_injection": True, "tool_call_limit": 4, "user_tokens": {"docs": "t"},
    "return_metrics": True, "llm_model_provider": "openai", "llm_model_name": "gpt-4.1",
    "llm_reasoning_effort": "xhigh", "harness_cli": "codex", "permission_mode": "gated",
}  # fmt: skip


async def test_create_echoes_the_full_body_as_a_pending_task(client: httpx.AsyncClient) -> None:
    resp = await client.post("/agent-execution/demo-agent", json=FULL_BODY, headers={"x-agent-version": "1"})
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    task = resp.json()
    assert task.keys() == TASK_FIELDS
    assert task["status"] == "pending"
    assert task["agent_id"] == "demo-agent"
    assert task["organization_id"] == ORG
    assert task["agent_version"] == "1"
    assert ISO_Z.match(task["created_at"])
    assert task["input"]["text"] == "Summarise the report"
    assert task["input"]["user"]["email"] == "u@example.com"
    assert task["input"]["attachments"][0]["kind"] == "pdf"
    assert task["input"]["principal"]["kind"] == "user"
    echoed = [
        "payload_extension", "source", "title", "think_mode", "tool_call_limit", "harness_cli",
        "llm_reasoning_effort", "permission_mode", "user_tokens", "events_streaming", "expected_output",
    ]  # fmt: skip
    assert {key: task[key] for key in echoed} == {key: FULL_BODY[key] for key in echoed}
    server = task["mcp_servers"][0]
    assert server["name"] == "docs"
    assert server["transport"] == "streamable-http"  # defaults filled in, as the SDK would send them
    assert server["share_user_token_across_other_agents"] is True


async def test_a_minimal_body_gets_the_sdk_defaults(client: httpx.AsyncClient) -> None:
    resp = await client.post("/agent-execution/echo-agent", json={})
    task = resp.json()
    assert resp.status_code == 200
    assert task["input"] == {"text": "", "files": [], "user": None, "attachments": [], "principal": None}
    assert task["events_streaming"] is False
    # The four keys SDK 2.0.266 mangles when absent are always present.
    assert {k: task[k] for k in ("expected_output", "triggering_agent_id", "title", "mcp_servers")} == {
        "expected_output": None,
        "triggering_agent_id": None,
        "title": None,
        "mcp_servers": [],
    }
    assert task["think_mode"] == "default"


async def test_get_follows_the_run_to_completion(client: httpx.AsyncClient) -> None:
    task = await create(client, "one two three", events_streaming=False)
    done = await wait_status(client, task["id"], "completed")
    assert done["result"] == 'The prompt "one two three" has 3 words.'
    assert ISO_Z.match(done["started_at"])
    assert ISO_Z.match(done["finished_at"])
    assert (
        done["tokens"]["total_tokens"]
        == done["tokens"]["prompt_tokens"] + done["tokens"]["completion_tokens"]
    )
    assert done["used_tools"] == ["word_count"]
    assert done["duration"] > 0
    assert done["is_manually_stopped"] is False


async def test_unknown_task_and_agent_are_404(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/agent-execution/nope/status"),
        ("DELETE", "/agent-execution/nope"),
        ("PATCH", "/agent-execution/nope/update"),
        ("POST", "/agent-execution/no-such-agent"),
        ("GET", "/agent-execution/executions/history/no-such-agent"),
        ("GET", "/agents/no-such-agent"),
    ]:
        resp = await client.request(method, path, json={} if method in ("PATCH", "POST") else None)
        assert resp.status_code == 404, path
        assert resp.headers["content-type"] == "application/json"
        assert "not found" in resp.json()["detail"]


async def test_stop_a_running_task(client: httpx.AsyncClient) -> None:
    task = await create(client, "#never", events_streaming=False)
    await wait_status(client, task["id"], "executing")
    resp = await client.delete(f"/agent-execution/{task['id']}")
    assert resp.status_code == 200
    stopped = resp.json()
    assert stopped["status"] == "stopped"
    assert stopped["is_manually_stopped"] is True
    assert stopped["finished_at"] is not None
    # Stopping again is a no-op on an ended task.
    again = (await client.delete(f"/agent-execution/{task['id']}")).json()
    assert again == stopped


async def test_stop_a_completed_task_leaves_it_unchanged(client: httpx.AsyncClient) -> None:
    task = await create(client, "quick")
    done = await wait_status(client, task["id"], "completed")
    resp = await client.delete(f"/agent-execution/{task['id']}")
    assert resp.json() == done


async def test_update_with_the_tasks_aupdate_shape(client: httpx.AsyncClient) -> None:
    task = await create(client, "#pause", events_streaming=False)
    await wait_status(client, task["id"], "paused")
    resp = await client.patch(
        f"/agent-execution/{task['id']}/update",
        json={"tool_call_payload_extension": {"k": 1}, "source": "ops", "last_executed_node_id": "n9"},
    )
    updated = resp.json()
    assert resp.status_code == 200
    assert updated["payload_extension"] == {"k": 1}
    assert (updated["source"], updated["last_executed_node_id"], updated["status"]) == ("ops", "n9", "paused")
    resp = await client.patch(
        f"/agent-execution/{task['id']}/update", json={"status": "completed", "result": "r"}
    )
    finished = resp.json()
    assert (finished["status"], finished["result"], finished["is_manually_stopped"]) == (
        "completed",
        "r",
        False,
    )
    assert finished["finished_at"] is not None


async def test_update_with_a_whole_task_and_head_quirks(client: httpx.AsyncClient) -> None:
    task = await create(client, "#never", events_streaming=False)
    whole = {
        **task,
        "title": [None],
        "expected_output": [None],
        "triggering_agent_id": [None],
        "mcp_servers": [[]],
    }
    whole.update(
        internal_status="halfway", tokens={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 99}
    )
    whole.update(id="ignored", created_at="1999-01-01T00:00:00Z")
    resp = await client.patch(f"/agent-execution/{task['id']}/update", json=whole)
    assert resp.status_code == 200, resp.text
    updated = resp.json()
    assert updated["id"] == task["id"]
    assert updated["created_at"] == task["created_at"]
    assert (updated["title"], updated["expected_output"], updated["mcp_servers"]) == (None, None, [])
    assert updated["internal_status"] == "halfway"
    assert updated["tokens"]["total_tokens"] == 7  # recomputed, never trusted
    await client.delete(f"/agent-execution/{task['id']}")


async def test_update_of_an_ended_task_changes_it_quietly(client: httpx.AsyncClient) -> None:
    task = await create(client, "x", events_streaming=False)
    await wait_status(client, task["id"], "completed")
    resp = await client.patch(
        f"/agent-execution/{task['id']}/update", json={"status": "error", "result": "late"}
    )
    assert (resp.json()["status"], resp.json()["result"]) == ("error", "late")


async def test_agent_history_lists_newest_first_with_exact_filters(client: httpx.AsyncClient) -> None:
    user = {"id": "u-7", "email": "u7@example.com"}
    first = await create(client, "a", input={"text": "a", "user": user}, triggering_agent_id="boss")
    second = await create(client, "#never", input={"text": "#never", "user": user})
    third = await create(client, "c", agent="echo-agent", input={"text": "c", "user": user})
    await wait_status(client, first["id"], "completed")
    await wait_status(client, third["id"], "completed")

    async def ids(path: str, **query: str) -> list[str]:
        resp = await client.get(path, params=query)
        assert resp.status_code == 200
        items: list[dict[str, Any]] = resp.json()
        assert isinstance(items, list)
        return [item["id"] for item in items]

    history = "/agent-execution/executions/history"
    assert await ids(f"{history}/demo-agent") == [second["id"], first["id"]]
    assert await ids(f"{history}/demo-agent", status="completed") == [first["id"]]
    assert await ids(f"{history}/demo-agent", triggering_agent_id="boss") == [first["id"]]
    assert await ids(f"{history}/demo-agent", user_id="u-7", status="executing") == [second["id"]]
    assert await ids(f"{history}/demo-agent", user_id="U-7") == []
    assert await ids(f"{history}/demo-agent", status="Completed") == []
    assert await ids(f"{history}/demo-agent", parent_task_id="p") == []
    assert await ids(f"{history}/demo-agent", internal_status="x") == []
    assert await ids(f"{history}/user/u-7") == [third["id"], second["id"], first["id"]]
    assert await ids(f"{history}/user/u-7", status="completed") == [third["id"], first["id"]]
    assert await ids(f"{history}/user/nobody") == []

    item = (await client.get(f"{history}/user/u-7", params={"status": "completed"})).json()[-1]
    assert item == {
        "id": first["id"], "agent_id": "demo-agent", "organization_id": ORG, "status": "completed",
        "user_id": "u-7", "parent_task_id": None, "triggering_agent_id": "boss",
        "created_at": first["created_at"], "updated_at": item["updated_at"], "source_node_type": None,
        "result": 'The prompt "a" has 1 word.', "title": None, "execution_kind": None, "process": None,
        "conversation_kind": None,
    }  # fmt: skip
    assert item["updated_at"] > item["created_at"]
    await client.delete(f"/agent-execution/{second['id']}")


async def test_continuing_a_task_starts_a_new_run_of_the_same_task(client: httpx.AsyncClient) -> None:
    task = await create(client, "first run", events_streaming=False, title="kept")
    await wait_status(client, task["id"], "completed")
    resp = await client.post(
        "/agent-execution/demo-agent", json={"id": task["id"], "input": {"text": "second run"}}
    )
    again = resp.json()
    assert resp.status_code == 200
    assert (again["id"], again["status"], again["result"], again["title"]) == (
        task["id"],
        "pending",
        None,
        "kept",
    )
    assert again["input"]["text"] == "second run"
    done = await wait_status(client, task["id"], "completed")
    assert done["result"] == 'The prompt "second run" has 2 words.'
    assert done["created_at"] == task["created_at"]


async def test_continuing_is_refused_while_running_or_across_agents(client: httpx.AsyncClient) -> None:
    task = await create(client, "#never", events_streaming=False)
    body = {"id": task["id"], "input": {"text": "more"}}
    resp = await client.post("/agent-execution/demo-agent", json=body)
    assert resp.status_code == 409
    assert "still" in resp.json()["detail"]
    resp = await client.post("/agent-execution/echo-agent", json=body)
    assert resp.status_code == 409
    assert "belongs to agent demo-agent" in resp.json()["detail"]
    resp = await client.post("/agent-execution/demo-agent", json={"id": "no-such-task"})
    assert resp.status_code == 404
    await client.delete(f"/agent-execution/{task['id']}")


async def test_a_paused_task_can_be_continued(client: httpx.AsyncClient) -> None:
    task = await create(client, "#pause", events_streaming=False)
    await wait_status(client, task["id"], "paused")
    resp = await client.post(
        "/agent-execution/demo-agent", json={"id": task["id"], "input": {"text": "go on"}}
    )
    assert resp.status_code == 200
    done = await wait_status(client, task["id"], "completed")
    assert done["paused_at"] is None
    assert done["result"] == 'The prompt "go on" has 2 words.'


async def test_agent_version_header(client: httpx.AsyncClient) -> None:
    for version, status in [("1", 200), ("draft", 200), ("01", 200), ("2", 404), ("latest", 422)]:
        headers = {"x-agent-version": version}
        resp = await client.post("/agent-execution/demo-agent", json={}, headers=headers)
        assert resp.status_code == status, version
        assert (await client.get("/agents/demo-agent", headers=headers)).status_code == status


async def test_many_tasks_run_concurrently(client: httpx.AsyncClient) -> None:
    tasks = await asyncio.gather(*(create(client, f"task {i}", events_streaming=False) for i in range(50)))
    assert len({task["id"] for task in tasks}) == 50
    done = await asyncio.gather(*(wait_status(client, task["id"], "completed") for task in tasks))
    assert [task["result"] for task in done] == [f'The prompt "task {i}" has 2 words.' for i in range(50)]

# mypy: ignore-errors
# This script runs under .venv-sdk (the official xpander-sdk and its dependencies), which mypy cannot see.
"""Drive a local platform with the official xpander-sdk and print what it saw as one JSON document.

Usage: .venv-sdk/bin/python tests/sdk/sdk_scenario.py BASE_URL ORGANIZATION_ID API_KEY

Every call goes through the SDK's own client and models, so a response or event the SDK cannot parse shows
up as an exception (the script then exits non-zero) or as a task event whose data stayed a raw dict.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from xpander_sdk import (
    AgentExecutionStatus,
    Agents,
    Configuration,
    MCPServerDetails,
    ModuleException,
    OutputFormat,
    Principal,
    PrincipalKind,
    Task,
    Tasks,
    User,
)
from xpander_sdk.models.shared import ThinkMode
from xpander_sdk.modules.agents.models.agent import LLMReasoningEffort
from xpander_sdk.modules.tasks.models.task import AttachmentRef
from xpander_sdk.modules.tools_repository.models.mcp import MCPServerAuthType, MCPServerTransport

# Shared with the test, which validates the JSON answer against it.
ANSWER_SCHEMA = json.loads(Path(__file__).with_name("answer_schema.json").read_text())


async def stream(task: Task) -> dict[str, Any]:
    """Follow a task's events to `task_finished`, as the SDK documents it."""
    types: list[str] = []
    untyped: list[str] = []
    chunks: list[str] = []
    final: dict[str, Any] = {}
    async for event in task.aevents():
        kind = event.type.value if hasattr(event.type, "value") else str(event.type)
        types.append(kind)
        if kind.startswith("task") and not isinstance(event.data, Task):
            untyped.append(kind)  # the SDK fell back to a raw dict: its Task model rejected our snapshot
        if kind == "chunk":
            chunks.append(event.data)
        if kind == "task_finished":
            data = event.data
            final = {
                "status": data.status.value,
                "result": data.result,
                "finished_at": data.finished_at is not None,
                "total_tokens": data.tokens.total_tokens if data.tokens else None,
            }
            break
    return {"types": types, "untyped": untyped, "chunks": "".join(chunks), "final": final}


async def wait_for(tasks: Tasks, task_id: str, status: AgentExecutionStatus) -> Task:
    """Poll with `Tasks.aget` until the task reaches `status` (10 s at most)."""
    for _ in range(200):
        task = await tasks.aget(task_id)
        if task.status == status:
            return task
        await asyncio.sleep(0.05)
    raise TimeoutError(f"task {task_id} never reached {status.value}")


async def wait_for_event(task: Task, kind: str) -> None:
    """Follow the task's events until one of type `kind` has been sent (10 s at most)."""
    async with asyncio.timeout(10):
        async for event in task.aevents():
            if (event.type.value if hasattr(event.type, "value") else str(event.type)) == kind:
                return
    raise TimeoutError(f"task {task.id} ended without a {kind} event")


async def main(base_url: str, organization_id: str, api_key: str) -> dict[str, Any]:
    config = Configuration(api_key=api_key, organization_id=organization_id, base_url=base_url)
    out: dict[str, Any] = {}

    agents = Agents(configuration=config)
    listed = await agents.alist()
    out["agents"] = [{"id": a.id, "status": a.status.value, "icon": a.icon} for a in listed]
    agent = await agents.aget("demo-agent")
    pinned = await agents.aget("echo-agent", version=1)
    out["agent"] = {
        "id": agent.id,
        "name": agent.name,
        "framework": agent.framework.value,
        "version": agent.version,
    }
    out["pinned_agent"] = {"id": pinned.id, "version": pinned.version}

    tasks = Tasks(configuration=config)
    user = User(
        id="sdk-user", first_name="Ada", last_name="Lovelace", email="ada@example.com", timezone="UTC"
    )
    task = await tasks.acreate(
        agent_id="demo-agent",
        prompt="count the words of this sentence please",
        file_urls=["https://example.com/report.pdf"],
        user_details=user,
        principal=Principal(kind=PrincipalKind.user, id="sdk-user", email="ada@example.com"),
        agent_version="1",
        tool_call_payload_extension={"trace": "abc"},
        source="sdk-test",
        worker_id="worker-1",
        output_format=OutputFormat.Markdown,
        events_streaming=True,
        additional_context="extra context",
        instructions_override="be brief",
        test_run_node_id="node-1",
        user_oidc_token="oidc-token",
        expected_output="a word count",
        mcp_servers=[
            MCPServerDetails(
                name="docs",
                url="https://mcp.example.com/mcp",
                transport=MCPServerTransport.HTTP_Transport,
                auth_type=MCPServerAuthType.APIKey,
                api_key="secret",
                allowed_tools=["search"],
            )
        ],
        triggering_agent_id="trigger-agent",
        title="SDK compatibility task",
        think_mode=ThinkMode.Harder,
        disable_attachment_injection=True,
        return_metrics=True,
        user_tokens={"docs": "user-token"},
        llm_model_provider="openai",
        llm_model_name="gpt-4.1",
        llm_reasoning_effort=LLMReasoningEffort.High,
        harness_cli="codex",
        tool_call_limit=5,
        attachments=[AttachmentRef(url="https://example.com/report.pdf", name="report.pdf", kind="pdf")],
        permission_mode="gated",
    )
    out["created"] = {
        "id": task.id,
        "status": task.status.value,
        "events_streaming": task.events_streaming,
        "title": task.title,
        "think_mode": task.think_mode.value,
        "mcp_servers": [s.name for s in task.mcp_servers],
        "user_email": task.input.user.email,
        "llm_reasoning_effort": task.llm_reasoning_effort.value,
        "agent_version": task.agent_version,
        "payload_extension": task.payload_extension,
    }
    out["stream"] = await stream(task)

    fetched = await tasks.aget(task.id)
    out["fetched"] = {
        "status": fetched.status.value,
        "result": fetched.result,
        "tokens": fetched.tokens is not None,
    }
    by_agent = await tasks.alist("demo-agent", filters={"user_id": "sdk-user"})
    by_user = await tasks.alist_user_tasks("sdk-user", filters={"status": "completed"})
    out["listed"] = {"by_agent": [t.id for t in by_agent], "by_user": [t.id for t in by_user]}

    # A second run of the same task: same id, its events appended to the same stream.
    again = await tasks.acreate(
        agent_id="demo-agent", existing_task_id=task.id, prompt="and once more", events_streaming=True
    )
    out["continued"] = {"id": again.id, "status": again.status.value, "stream": await stream(again)}

    json_task = await agent.acreate_task(
        prompt="describe this in json",
        output_format=OutputFormat.Json,
        output_schema=ANSWER_SCHEMA,
        events_streaming=True,
        user_details=user,
    )
    out["json_task"] = {"source": json_task.source, "stream": await stream(json_task)}

    never = await agent.acreate_task(prompt="keep going #never #delay=0.01", events_streaming=True)
    # Stopped only once every event the test expects before the stop has been sent.
    await wait_for_event(never, "tool_call_result")
    running = await wait_for(tasks, never.id, AgentExecutionStatus.Executing)
    stopped = await tasks.astop(never.id)
    out["never"] = {
        "running_status": running.status.value,
        "stopped_status": stopped.status.value,
        "is_manually_stopped": stopped.is_manually_stopped,
        "stream": await stream(stopped),
    }

    paused = await tasks.acreate(
        agent_id="echo-agent", prompt="hold on #pause #delay=0.01", events_streaming=True
    )
    paused = await wait_for(tasks, paused.id, AgentExecutionStatus.Paused)
    updated = await tasks.aupdate(paused.id, status=AgentExecutionStatus.Completed, result="done by hand")
    await updated.aset_status(AgentExecutionStatus.Completed, "saved whole")
    out["updated"] = {"paused": paused.status.value, "status": updated.status.value, "result": updated.result}

    try:
        bad = Configuration(api_key="wrong-key", organization_id=organization_id, base_url=base_url)
        await Agents(configuration=bad).alist()
        out["bad_key"] = None
    except ModuleException as exc:
        out["bad_key"] = {"status_code": exc.status_code, "description": exc.description}

    try:
        await tasks.aget("no-such-task")
        out["missing"] = None
    except ModuleException as exc:
        out["missing"] = {"status_code": exc.status_code, "description": exc.description}
    return out


if __name__ == "__main__":
    result = asyncio.run(main(*sys.argv[1:4]))
    print(json.dumps(result))

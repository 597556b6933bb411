"""The official `xpander-sdk` (2.0.537) cannot tell the local platform from the real one on its routes.

The SDK lives in `.venv-sdk` (`make sdk-venv`): its dependencies clash with ours. The scenario script runs
there, against a local platform started here on a free port, and prints what the SDK's own models made of
every response and event. Under CI a missing SDK venv fails the suite; locally it skips.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bridge.localplatform import LocalPlatform

ROOT = Path(__file__).resolve().parents[2]
SDK_PYTHON = ROOT / ".venv-sdk" / "bin" / "python"
SCENARIO = Path(__file__).with_name("sdk_scenario.py")
SCHEMA = Path(__file__).with_name("answer_schema.json")
API_KEY = "sdk-test-key"
DEMO_TYPES = ["task_created", "task_updated", "think", "tool_call_request", "tool_call_result"]


def _sdk_python() -> Path:
    if not (SDK_PYTHON.parent.parent / ".installed").exists():
        message = f"{SDK_PYTHON.parent.parent} is missing or incomplete: run `make sdk-venv`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return SDK_PYTHON


@pytest.fixture(scope="module")
def sdk_result() -> dict[str, Any]:
    """Run the scenario once; every test below reads one part of what the SDK saw."""
    sdk_python = _sdk_python()
    return asyncio.run(_run_scenario(sdk_python))


async def _run_scenario(sdk_python: Path) -> dict[str, Any]:
    # The SDK reads XPANDER_* from the environment when a Configuration leaves a setting out: keep ours out.
    env = {k: v for k, v in os.environ.items() if not k.startswith("XPANDER_")}
    async with LocalPlatform(api_keys=[API_KEY], step_delay=0.005) as platform:
        process = await asyncio.create_subprocess_exec(
            str(sdk_python),
            str(SCENARIO),
            platform.url,
            platform.organization_id,
            API_KEY,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        async with asyncio.timeout(180):
            stdout, stderr = await process.communicate()
    if process.returncode != 0:
        sys.stderr.write(stderr.decode())
        pytest.fail(f"the SDK scenario failed (exit {process.returncode}): {stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(stdout)
    result["stderr"] = stderr.decode()
    return result


def test_sdk_logged_no_parse_warning(sdk_result: dict[str, Any]) -> None:
    # The SDK drops or downgrades what it cannot parse with a warning on stderr rather than an exception.
    assert "parse failed" not in sdk_result["stderr"]
    assert "dropping unparseable event" not in sdk_result["stderr"]


def test_agents_list_and_get(sdk_result: dict[str, Any]) -> None:
    assert [agent["id"] for agent in sdk_result["agents"]] == ["demo-agent", "echo-agent"]
    assert all(agent["status"] == "ACTIVE" and agent["icon"] for agent in sdk_result["agents"])
    assert sdk_result["agent"] == {
        "id": "demo-agent",
        "name": "Demo agent",
        "framework": "agno",
        "version": 1,
    }
    assert sdk_result["pinned_agent"] == {"id": "echo-agent", "version": 1}


def test_create_with_many_parameters(sdk_result: dict[str, Any]) -> None:
    created = sdk_result["created"]
    assert created["status"] == "pending"
    assert created["events_streaming"] is True
    assert created["title"] == "SDK compatibility task"
    assert created["think_mode"] == "harder"
    assert created["mcp_servers"] == ["docs"]
    assert created["user_email"] == "ada@example.com"
    assert created["llm_reasoning_effort"] == "high"
    assert created["agent_version"] == "1"
    assert created["payload_extension"] == {"trace": "abc"}


def test_stream_to_task_finished_with_typed_task_events(sdk_result: dict[str, Any]) -> None:
    stream = sdk_result["stream"]
    assert stream["types"] == [*DEMO_TYPES, "chunk", "chunk", "chunk", "task_finished"]
    assert stream["untyped"] == []  # every task_* event's data parsed as the SDK's Task model
    expected = 'The prompt "count the words of this sentence please" has 7 words.'
    assert stream["chunks"] == expected
    assert stream["final"]["status"] == "completed"
    assert stream["final"]["result"] == expected
    assert stream["final"]["finished_at"] is True
    assert stream["final"]["total_tokens"] > 0


def test_get_and_list(sdk_result: dict[str, Any]) -> None:
    task_id = sdk_result["created"]["id"]
    assert sdk_result["fetched"]["status"] == "completed"
    assert sdk_result["fetched"]["tokens"] is True
    assert sdk_result["listed"]["by_agent"] == [task_id]
    assert sdk_result["listed"]["by_user"][-1] == task_id


def test_existing_task_id_continues_the_task(sdk_result: dict[str, Any]) -> None:
    continued = sdk_result["continued"]
    assert continued["id"] == sdk_result["created"]["id"]
    assert continued["status"] == "pending"
    assert continued["stream"]["types"][0] == "task_created"
    assert continued["stream"]["final"]["result"] == 'The prompt "and once more" has 3 words.'


def test_agent_acreate_task_with_a_json_schema(sdk_result: dict[str, Any]) -> None:
    json_task = sdk_result["json_task"]
    assert json_task["source"] == "sdk"  # Agent.acreate_task's default
    final = json_task["stream"]["final"]
    assert final["status"] == "completed"
    jsonschema.validate(json.loads(final["result"]), json.loads(SCHEMA.read_text()))
    assert json_task["stream"]["chunks"] == final["result"]


def test_stop_a_never_task(sdk_result: dict[str, Any]) -> None:
    never = sdk_result["never"]
    assert never["running_status"] == "executing"
    assert never["stopped_status"] == "stopped"
    assert never["is_manually_stopped"] is True
    assert never["stream"]["types"] == [*DEMO_TYPES, "task_finished"]
    assert never["stream"]["final"]["status"] == "stopped"


def test_update_and_save(sdk_result: dict[str, Any]) -> None:
    assert sdk_result["updated"] == {"paused": "paused", "status": "completed", "result": "saved whole"}


def test_errors_reach_the_sdk_with_their_status(sdk_result: dict[str, Any]) -> None:
    assert sdk_result["bad_key"]["status_code"] == 403
    assert sdk_result["missing"]["status_code"] == 404
    assert json.loads(sdk_result["missing"]["description"]) == {"detail": "task no-such-task not found"}

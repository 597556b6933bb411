"""The platform's REST routes: parse, one store or lifecycle call, answer JSON."""

from __future__ import annotations

from aiohttp import web

from bridge.localplatform.agents import AGENTS, BuiltinAgent
from bridge.localplatform.bodies import CreateTaskBody, UpdateTaskBody, parse_body
from bridge.localplatform.state import STATE, PlatformState
from bridge.localplatform.store import TaskRecord
from bridge.localplatform.tasks import FILTER_KEYS
from bridge.localplatform.wire import ApiError, dumps, json_response

__all__ = [
    "create_task",
    "get_agent",
    "get_task",
    "list_agents",
    "list_tasks",
    "list_user_tasks",
    "stop_task",
    "task_record",
    "update_task",
]

# Built-in agents have a single published version; `draft` names the working copy.
_AGENT_VERSIONS = frozenset({"1", "draft"})


async def create_task(request: web.Request) -> web.Response:
    """`POST /agent-execution/{agent_id}`: a new task, or a new run of the task named by `id`."""
    state = request.app[STATE]
    agent = _agent(request.match_info["agent_id"])
    version = _agent_version(request, agent)
    body = parse_body(CreateTaskBody, await request.read())
    if body.id is None:
        record = state.lifecycle.create(agent, body, version)
    else:
        record = task_record(state, body.id)
        state.lifecycle.continue_task(record, agent, body, version)
    return json_response(record.json())


async def get_task(request: web.Request) -> web.Response:
    """`GET /agent-execution/{task_id}/status`."""
    return json_response(task_record(request.app[STATE], request.match_info["task_id"]).json())


async def stop_task(request: web.Request) -> web.Response:
    """`DELETE /agent-execution/{task_id}`: stop; answers the stopped (or already ended) task."""
    state = request.app[STATE]
    record = task_record(state, request.match_info["task_id"])
    state.lifecycle.stop(record)
    return json_response(record.json())


async def update_task(request: web.Request) -> web.Response:
    """`PATCH /agent-execution/{task_id}/update`: `Tasks.aupdate` keys or a whole Task."""
    state = request.app[STATE]
    record = task_record(state, request.match_info["task_id"])
    body = parse_body(UpdateTaskBody, await request.read())
    state.lifecycle.update(record, body.changes())
    return json_response(record.json())


async def list_tasks(request: web.Request) -> web.Response:
    """`GET /agent-execution/executions/history/{agent_id}`: the agent's tasks, newest first."""
    state = request.app[STATE]
    agent = _agent(request.match_info["agent_id"])
    filters = {key: request.query[key] for key in FILTER_KEYS if key in request.query}
    return json_response(dumps(state.store.history(filters, agent_id=agent.id)))


async def list_user_tasks(request: web.Request) -> web.Response:
    """`GET /agent-execution/executions/history/user/{user_id}`: a user's tasks, newest first."""
    state = request.app[STATE]
    filters = {key: request.query[key] for key in FILTER_KEYS if key in request.query and key != "user_id"}
    return json_response(dumps(state.store.history(filters, user_id=request.match_info["user_id"])))


async def list_agents(request: web.Request) -> web.Response:
    """`GET /agents/list`: the built-in agents."""
    return json_response(request.app[STATE].agents_json)


async def get_agent(request: web.Request) -> web.Response:
    """`GET /agents/{agent_id}`, honouring `x-agent-version`."""
    agent = _agent(request.match_info["agent_id"])
    _agent_version(request, agent)
    return json_response(request.app[STATE].agent_json[agent.id])


def task_record(state: PlatformState, task_id: str) -> TaskRecord:
    """The task, or a 404 (unknown or evicted)."""
    record = state.store.get(task_id)
    if record is None:
        raise ApiError(404, f"task {task_id} not found")
    return record


def _agent(agent_id: str) -> BuiltinAgent:
    agent = AGENTS.get(agent_id)
    if agent is None:
        raise ApiError(404, f"agent {agent_id} not found")
    return agent


def _agent_version(request: web.Request, agent: BuiltinAgent) -> str | None:
    version = request.headers.get("x-agent-version")
    if version is None:
        return None
    version = version.strip()
    if not (version.isdigit() or version == "draft"):
        raise ApiError(422, "x-agent-version: must be an integer or 'draft'")
    if version.lstrip("0") not in _AGENT_VERSIONS and version != "draft":
        raise ApiError(404, f"agent {agent.id} has no version {version}")
    return version

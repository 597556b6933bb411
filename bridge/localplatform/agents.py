"""The built-in agents: their catalogue entries and the deterministic answers they give.

`demo-agent` thinks, calls a built-in word-count tool on the prompt and answers with the count (or, in
`output_format=json` with an `output_schema`, a JSON document valid against the schema). `echo-agent` answers
the prompt itself and calls no tool. Both receive the prompt with its directives already removed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.localplatform.schema_answer import answer_for_schema
from bridge.localplatform.wire import dumps

__all__ = ["AGENTS", "BuiltinAgent", "agent_document", "agent_list_item"]

# A fixed creation time keeps the catalogue byte-identical across runs.
_CREATED_AT = "2026-01-01T00:00:00Z"


@dataclass(frozen=True, slots=True)
class BuiltinAgent:
    """One scripted agent: what the catalogue says about it and how it answers."""

    id: str
    name: str
    description: str
    icon: str
    role: str
    goal: str
    uses_word_count: bool
    answer: Callable[[str, str | None, Mapping[str, Any] | None], str]


def _demo_answer(prompt: str, output_format: str | None, output_schema: Mapping[str, Any] | None) -> str:
    words = len(prompt.split())
    if output_format == "json":
        document = (
            answer_for_schema(output_schema, prompt)
            if output_schema is not None
            else {"prompt": prompt, "word_count": words}
        )
        return dumps(document).decode()
    return f'The prompt "{prompt}" has {words} word{"" if words == 1 else "s"}.'


def _echo_answer(prompt: str, output_format: str | None, output_schema: Mapping[str, Any] | None) -> str:
    return prompt or "(empty prompt)"


AGENTS: dict[str, BuiltinAgent] = {
    agent.id: agent
    for agent in (
        BuiltinAgent(
            id="demo-agent",
            name="Demo agent",
            description="Scripted agent: thinks, counts the prompt's words with a tool, streams the answer.",
            icon="🧪",
            role="A deterministic demonstration agent of the local platform.",
            goal="Count the words of the prompt and say how many there are.",
            uses_word_count=True,
            answer=_demo_answer,
        ),
        BuiltinAgent(
            id="echo-agent",
            name="Echo agent",
            description="Scripted agent: streams the prompt back as its answer.",
            icon="🔁",
            role="A deterministic echo agent of the local platform.",
            goal="Repeat the prompt.",
            uses_word_count=False,
            answer=_echo_answer,
        ),
    )
}


def _instructions(agent: BuiltinAgent) -> dict[str, Any]:
    return {"role": [agent.role], "goal": [agent.goal], "general": agent.description}


def agent_list_item(agent: BuiltinAgent, organization_id: str) -> dict[str, Any]:
    """The agent as `GET /agents/list` shows it (AgentsListItem)."""
    return {
        "id": agent.id,
        "name": agent.name,
        "icon": agent.icon,
        "instructions": _instructions(agent),
        "status": "ACTIVE",
        "organization_id": organization_id,
        "created_at": _CREATED_AT,
        "description": agent.description,
        "access_scope": "organizational",
        "created_by": None,
        "type": "regular",
    }


def agent_document(agent: BuiltinAgent, organization_id: str) -> dict[str, Any]:
    """The agent as `GET /agents/{agent_id}` returns it (Agent); `graph` and `tools` are empty on purpose.

    A tool in `tools` would make the SDK try to sync "local tools" back to the platform; the word-count tool
    exists only inside the script.
    """
    return {
        "id": agent.id,
        "organization_id": organization_id,
        "name": agent.name,
        "unique_name": agent.id,
        "description": agent.description,
        "icon": agent.icon,
        "version": 1,
        "status": "ACTIVE",
        "type": "regular",
        "deployment_type": "serverless",
        "framework": "agno",
        "access_scope": "organizational",
        "source_nodes": [{"id": f"{agent.id}-sdk", "type": "sdk", "targets": [], "metadata": {}}],
        "model_provider": "local",
        "model_name": "scripted",
        "llm_reasoning_effort": "medium",
        "output_format": "markdown",
        "output_schema": None,
        "expected_output": "",
        "instructions": _instructions(agent),
        "created_by": None,
        "created_at": _CREATED_AT,
        "webhook_url": None,
        "knowledge_bases": [],
        "deep_planning": False,
        "enforce_deep_planning": False,
        "graph": [],
        "tools": [],
    }

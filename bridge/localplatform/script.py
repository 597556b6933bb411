"""The scripted run of a built-in agent, planned up front as a list of timed steps.

Planning is pure (prompt in, steps out) so what an agent does is tested without a clock or a socket; the
task lifecycle plays the steps, sleeping before each. `task_created` is not a step: it is emitted when the
task is created, before the HTTP answer, so a subscriber connecting right after create sees it.

Per prompt P (its directives removed) the demo agent plays: `executing` → `think` → `tool_call_request` /
`tool_call_result` of the word-count tool on P → the answer as `chunk` events that concatenate exactly to the
result → `completed`. Directives change that (checked in this order): `#never` holds at `executing` after the
tool call until stopped; `#pause` goes `paused` after thinking and holds; `#fail` makes the tool call fail and
ends `failed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge.localplatform.agents import BuiltinAgent
from bridge.localplatform.directives import parse_directives, strip_directives

__all__ = [
    "DEFAULT_CHUNKS",
    "Action",
    "Emit",
    "Finish",
    "Hold",
    "SetStatus",
    "Step",
    "plan_run",
    "split_answer",
]

DEFAULT_CHUNKS = 3
FAILURE = "The word_count tool failed on purpose (#fail directive)."


@dataclass(frozen=True, slots=True)
class Emit:
    """Append a non-task event (`think`, `tool_call_*`, `chunk`) whose `data` is given."""

    type: str
    data: Any


@dataclass(frozen=True, slots=True)
class SetStatus:
    """Move the task to a non-terminal status and emit `task_updated` with its snapshot."""

    status: str


@dataclass(frozen=True, slots=True)
class Finish:
    """End the run: terminal status, result, usage; emits `task_finished`."""

    status: str
    result: str
    tokens: dict[str, int]
    used_tools: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Hold:
    """Stay as is until the task is stopped, updated to a terminal status or continued."""


Action = Emit | SetStatus | Finish | Hold
Step = tuple[float, Action]


def plan_run(
    agent: BuiltinAgent,
    *,
    task_id: str,
    run: int,
    prompt: str,
    output_format: str | None,
    output_schema: Mapping[str, Any] | None,
    default_delay: float,
) -> list[Step]:
    """The steps of one run of `agent` on `prompt`, each paired with the delay to wait before it."""
    directives = parse_directives(prompt)
    prompt = strip_directives(prompt)  # the agent reads the prompt as the directives leave it
    delay = default_delay if directives.delay is None else directives.delay
    call_id = f"{task_id}-{run}"
    actions: list[Action] = [SetStatus("executing")]

    if agent.uses_word_count:
        actions.append(Emit("think", _think(call_id)))
    if directives.pause and not directives.never:
        return _timed([*actions, SetStatus("paused"), Hold()], delay)

    used_tools: list[str] = []
    if agent.uses_word_count:
        request = _word_count_request(call_id, prompt)
        failing = directives.fail and not directives.never
        outcome = {"error": FAILURE} if failing else {"words": len(prompt.split())}
        actions += [
            Emit("tool_call_request", request),
            Emit("tool_call_result", {**request, "result": outcome, "is_error": failing}),
        ]
        used_tools.append("word_count")
    if directives.never:
        return _timed([*actions, Hold()], delay)
    if directives.fail:
        return _timed([*actions, Finish("failed", FAILURE, _tokens(prompt, FAILURE), used_tools)], delay)

    answer = agent.answer(prompt, output_format, output_schema)
    actions += [Emit("chunk", piece) for piece in split_answer(answer, directives.chunks or DEFAULT_CHUNKS)]
    actions.append(Finish("completed", answer, _tokens(prompt, answer), used_tools))
    return _timed(actions, delay)


def split_answer(answer: str, chunks: int) -> list[str]:
    """Cut `answer` into at most `chunks` non-empty pieces of near-equal length that join back exactly."""
    count = max(1, min(chunks, len(answer)))
    size = len(answer)
    return [answer[i * size // count : (i + 1) * size // count] for i in range(count)]


def _timed(actions: list[Action], delay: float) -> list[Step]:
    return [(delay, action) for action in actions]


def _think(call_id: str) -> dict[str, Any]:
    # The SDK's own producers shape reasoning as a ToolCallRequest of the `think` pseudo-tool.
    thought = {
        "title": "Plan the answer",
        "confidence": 0.9,
        "thought": "Count the words of the prompt with the word_count tool, then report the count.",
        "action": "call word_count",
    }
    return {
        "request_id": f"{call_id}-think",
        "operation_id": "think",
        "tool_call_id": f"{call_id}-think",
        "graph_node_id": None,
        "tool_name": "think",
        "payload": {"input": thought},
        "reasoning": None,
    }


def _word_count_request(call_id: str, prompt: str) -> dict[str, Any]:
    return {
        "request_id": f"{call_id}-word-count",
        "operation_id": "word_count",
        "tool_call_id": f"{call_id}-word-count",
        "graph_node_id": None,
        "tool_name": "word_count",
        "payload": {"text": prompt},
        "reasoning": {"title": "Count words", "description": "Count the whitespace-separated words."},
    }


def _tokens(prompt: str, answer: str) -> dict[str, int]:
    # Deterministic stand-ins for usage: one token per word, plus a fixed system prompt.
    prompt_tokens = len(prompt.split()) + 16
    completion_tokens = len(answer.split())
    return {
        "completion_tokens": completion_tokens,
        "prompt_tokens": prompt_tokens,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "total_tokens": completion_tokens + prompt_tokens,
    }

"""What the scripted agents plan to do, checked without a clock or a socket."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from bridge.localplatform.agents import AGENTS
from bridge.localplatform.script import (
    DEFAULT_CHUNKS,
    Emit,
    Finish,
    Hold,
    SetStatus,
    Step,
    plan_run,
    split_answer,
)

DEMO = AGENTS["demo-agent"]
ECHO = AGENTS["echo-agent"]


def plan(prompt: str, agent: str = "demo-agent", **kwargs: Any) -> list[Step]:
    options: dict[str, Any] = {"output_format": None, "output_schema": None, "default_delay": 0.05, **kwargs}
    return plan_run(AGENTS[agent], task_id="t1", run=1, prompt=prompt, **options)


def shape(steps: list[Step]) -> list[str]:
    names = []
    for _, action in steps:
        if isinstance(action, Emit):
            names.append(action.type)
        elif isinstance(action, SetStatus):
            names.append(action.status)
        elif isinstance(action, Finish):
            names.append(f"finish:{action.status}")
        else:
            names.append("hold")
    return names


def test_demo_agent_thinks_counts_words_and_answers_in_chunks() -> None:
    steps = plan("count these four words")
    assert shape(steps) == [
        "executing",
        "think",
        "tool_call_request",
        "tool_call_result",
        *["chunk"] * DEFAULT_CHUNKS,
        "finish:completed",
    ]
    assert all(delay == 0.05 for delay, _ in steps)
    finish = steps[-1][1]
    assert isinstance(finish, Finish)
    assert finish.result == 'The prompt "count these four words" has 4 words.'
    assert "".join(a.data for _, a in steps if isinstance(a, Emit) and a.type == "chunk") == finish.result
    assert finish.used_tools == ["word_count"]
    assert (
        finish.tokens["total_tokens"] == finish.tokens["prompt_tokens"] + finish.tokens["completion_tokens"]
    )
    result = next(a.data for _, a in steps if isinstance(a, Emit) and a.type == "tool_call_result")
    assert result["result"] == {"words": 4}
    assert result["is_error"] is False
    assert result["payload"] == {"text": "count these four words"}


def test_think_is_shaped_like_the_sdk_reasoning_event() -> None:
    think = next(a.data for _, a in plan("x") if isinstance(a, Emit) and a.type == "think")
    assert think["operation_id"] == think["tool_name"] == "think"
    assert {"title", "confidence", "thought"} <= think["payload"]["input"].keys()


def test_directives_set_delay_and_chunks_and_are_not_read_as_prompt() -> None:
    steps = plan("one two #delay=0.5 #chunks=5")
    assert {delay for delay, _ in steps} == {0.5}
    assert shape(steps).count("chunk") == 5
    finish = steps[-1][1]
    assert isinstance(finish, Finish)
    assert finish.result == 'The prompt "one two" has 2 words.'


def test_fail_makes_the_tool_fail_and_the_task_fail() -> None:
    steps = plan("oops #fail")
    assert shape(steps) == ["executing", "think", "tool_call_request", "tool_call_result", "finish:failed"]
    result = next(a.data for _, a in steps if isinstance(a, Emit) and a.type == "tool_call_result")
    assert result["is_error"] is True
    finish = steps[-1][1]
    assert isinstance(finish, Finish)
    assert "failed" in finish.result


def test_pause_holds_paused_and_never_holds_executing() -> None:
    assert shape(plan("#pause")) == ["executing", "think", "paused", "hold"]
    assert shape(plan("#never")) == ["executing", "think", "tool_call_request", "tool_call_result", "hold"]
    assert shape(plan("#never #pause #fail")) == shape(plan("#never"))
    assert isinstance(plan("#never")[-1][1], Hold)


def test_echo_agent_answers_the_prompt_without_tools() -> None:
    steps = plan("say this back #chunks=2", agent="echo-agent")
    assert shape(steps) == ["executing", "chunk", "chunk", "finish:completed"]
    finish = steps[-1][1]
    assert isinstance(finish, Finish)
    assert finish.result == "say this back"
    assert finish.used_tools == []
    assert shape(plan("#fail", agent="echo-agent")) == ["executing", "finish:failed"]
    assert shape(plan("#pause", agent="echo-agent")) == ["executing", "paused", "hold"]


def test_json_output_without_schema_is_a_json_object() -> None:
    finish = plan("a b c", output_format="json")[-1][1]
    assert isinstance(finish, Finish)
    assert finish.result == '{"prompt":"a b c","word_count":3}'


def test_json_output_with_schema_is_valid_against_it() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "maximum": 2}, "s": {"type": "string"}},
        "required": ["n", "s"],
    }
    finish = plan("a b c d", output_format="json", output_schema=schema)[-1][1]
    assert isinstance(finish, Finish)
    import json

    jsonschema.validate(json.loads(finish.result), schema)


@pytest.mark.parametrize(("text", "chunks"), [("abcdefghij", 3), ("ab", 5), ("x", 1), ("hello world", 11)])
def test_split_answer_joins_back_exactly(text: str, chunks: int) -> None:
    pieces = split_answer(text, chunks)
    assert "".join(pieces) == text
    assert len(pieces) == min(chunks, len(text))
    assert all(pieces)

"""The JSON answer is valid against the schema it was asked for, whatever common shape that schema has."""

from __future__ import annotations

from typing import Any, Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from bridge.localplatform.schema_answer import answer_for_schema


class Node(BaseModel):
    name: str
    children: list[Node] = []


class Report(BaseModel):
    title: str = Field(min_length=5, max_length=40)
    score: float = Field(gt=0, lt=1)
    count: int = Field(ge=10)
    tags: list[str] = Field(min_length=2, max_length=3)
    mood: Literal["good", "bad"]
    root: Node
    note: str | None = None
    parts: tuple[int, str]


SCHEMAS: list[dict[str, Any]] = [
    Report.model_json_schema(),
    {"type": "string"},
    {"type": "string", "minLength": 200},
    {"type": "string", "maxLength": 2},
    {"type": "string", "format": "date-time"},
    {"type": "string", "format": "email"},
    {"type": "integer", "minimum": 5, "exclusiveMaximum": 7},
    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.1},
    {"type": "integer", "maximum": -3},
    {"type": "boolean"},
    {"type": "null"},
    {"type": ["null", "array"], "items": {"type": "boolean"}, "minItems": 3},
    {"type": "array", "maxItems": 0},
    {"enum": ["a", "b"]},
    {"const": {"fixed": True}},
    {"anyOf": [{"type": "null"}, {"type": "integer"}]},
    {"oneOf": [{"type": "string"}, {"type": "boolean"}]},
    {"allOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]}, {"required": ["b"]}]},
    {"type": "object", "required": ["x"], "additionalProperties": {"type": "integer"}},
    {
        "type": "object",
        "properties": {"a": {"$ref": "#/definitions/thing"}},
        "definitions": {"thing": {"type": "string"}},
    },
    {},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_answer_validates(schema: dict[str, Any]) -> None:
    answer = answer_for_schema(schema, "three little words")
    jsonschema.Draft202012Validator(schema).validate(answer)


def test_draft4_boolean_exclusive_bounds() -> None:
    schema = {"type": "integer", "minimum": 1, "maximum": 5, "exclusiveMaximum": True}
    answer = answer_for_schema(schema, "one two three four five six")
    jsonschema.Draft4Validator(schema).validate(answer)


def test_answer_is_deterministic_and_uses_the_prompt() -> None:
    schema = {"type": "object", "properties": {"text": {"type": "string"}, "n": {"type": "integer"}}}
    first = answer_for_schema(schema, "alpha beta")
    assert first == answer_for_schema(schema, "alpha beta")
    assert first == {"text": "text: alpha beta", "n": 2}


def test_recursive_schema_terminates() -> None:
    answer = answer_for_schema(Node.model_json_schema(), "deep")
    jsonschema.validate(answer, Node.model_json_schema())

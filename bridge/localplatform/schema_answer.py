"""A deterministic JSON document valid against a JSON schema: the demo agent's answer in `output_format=json`.

Covers what output schemas use in practice (and what pydantic's `model_json_schema()` emits): `type` (one or a
list), `object` with `properties`/`required`, `array` with `items`/`minItems`/`maxItems`, `string` with
`minLength`/`maxLength`/`format`, `integer`/`number` with inclusive and exclusive bounds, `boolean`, `null`,
`enum`, `const`, `anyOf`/`oneOf` (first usable branch), `allOf` (merged) and local `$ref`s into `$defs` or
`definitions`. Keywords it cannot satisfy generally (`pattern`, `multipleOf`, ...) are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["answer_for_schema"]

# Recursive schemas (a tree node whose children are nodes) must stop somewhere: past this depth optional
# properties are left out and arrays are empty where the schema allows it.
_MAX_DEPTH = 6

_FORMATS: dict[str, str] = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00Z",
    "email": "demo@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
}


def answer_for_schema(schema: Mapping[str, Any], prompt: str) -> Any:
    """Build a JSON value valid against `schema`, filled from `prompt` (its words, their count)."""
    return _Generator(schema, prompt).value(schema, "answer", 0)


class _Generator:
    def __init__(self, root: Mapping[str, Any], prompt: str) -> None:
        self._root = root
        self._prompt = prompt.strip() or "demo"
        self._words = len(prompt.split())

    def value(self, schema: Any, name: str, depth: int) -> Any:
        if not isinstance(schema, Mapping):
            return None  # `true` / `{}`-like schemas accept anything, null included
        schema = self._resolve(schema, depth)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                return self.value(self._pick_branch(schema[key], depth), name, depth + 1)
        kind = self._type_of(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind == "string":
            return self._string(schema, name)
        if kind in ("integer", "number"):
            return self._number(schema, integer=kind == "integer")
        if kind == "boolean":
            return True
        return None

    def _resolve(self, schema: Mapping[str, Any], depth: int) -> Mapping[str, Any]:
        while "$ref" in schema and depth <= 64:
            target = self._lookup(str(schema["$ref"]))
            # Keywords beside a `$ref` narrow it (2019-09 and later); the ref supplies the rest.
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            depth += 1
        if schema.get("allOf"):
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                if isinstance(part, Mapping):
                    part = self._resolve(part, depth + 1)
                    merged["properties"] = {**part.get("properties", {}), **merged.get("properties", {})}
                    merged["required"] = [*merged.get("required", []), *part.get("required", [])]
                    merged.update({k: v for k, v in part.items() if k not in ("properties", "required")})
            schema = merged
        return schema

    def _lookup(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#"):
            return {}  # remote references cannot be fetched offline; treat them as "anything"
        node: Any = self._root
        for token in filter(None, ref[1:].split("/")):
            token = token.replace("~1", "/").replace("~0", "~")
            node = node.get(token, {}) if isinstance(node, Mapping) else {}
        return node if isinstance(node, Mapping) else {}

    def _pick_branch(self, branches: list[Any], depth: int) -> Any:
        # Prefer a non-null branch so the answer carries content; deep in a recursion prefer null to stop.
        nullable = [b for b in branches if isinstance(b, Mapping) and b.get("type") == "null"]
        if depth >= _MAX_DEPTH and nullable:
            return nullable[0]
        for branch in branches:
            if not (isinstance(branch, Mapping) and branch.get("type") == "null"):
                return branch
        return branches[0]

    @staticmethod
    def _type_of(schema: Mapping[str, Any]) -> str | None:
        kind = schema.get("type")
        if isinstance(kind, list):
            non_null = [k for k in kind if k != "null"]
            return str(non_null[0]) if non_null else "null"
        if isinstance(kind, str):
            return kind
        if "properties" in schema or "required" in schema:
            return "object"
        if "items" in schema:
            return "array"
        return None

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties: Mapping[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        result: dict[str, Any] = {}
        for key, sub in properties.items():
            if key in required or depth < _MAX_DEPTH:
                result[key] = self.value(sub, key, depth + 1)
        for key in required - result.keys():
            # Required but undeclared: whatever `additionalProperties` allows, or null.
            extra = schema.get("additionalProperties")
            result[key] = self.value(extra, key, depth + 1) if isinstance(extra, Mapping) else None
        return result

    def _array(self, schema: Mapping[str, Any], name: str, depth: int) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = schema.get("maxItems")
        count = max(low, 0 if depth >= _MAX_DEPTH else 1)
        if high is not None:
            count = min(count, int(high))
        prefix = schema.get("prefixItems") or []
        items = [self.value(sub, name, depth + 1) for sub in prefix[:count]]
        while len(items) < count:
            items.append(self.value(schema.get("items", {}), name, depth + 1))
        return items

    def _string(self, schema: Mapping[str, Any], name: str) -> str:
        text = _FORMATS.get(str(schema.get("format", "")), f"{name}: {self._prompt}")
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        if len(text) < low:
            text += "." * (low - len(text))
        if high is not None:
            text = text[: int(high)]
        return text

    def _number(self, schema: Mapping[str, Any], *, integer: bool) -> int | float:
        low, low_open = _bound(schema, "minimum", "exclusiveMinimum", -math.inf, max)
        high, high_open = _bound(schema, "maximum", "exclusiveMaximum", math.inf, min)

        def fits(value: float) -> bool:
            above = value > low if low_open else value >= low
            below = value < high if high_open else value <= high
            return above and below

        candidates = [float(self._words)]
        if math.isfinite(low):
            candidates += [math.ceil(low), math.ceil(low) + 1] if integer else [low, low + 1]
        if math.isfinite(high):
            candidates += [math.floor(high), math.floor(high) - 1] if integer else [high, high - 1]
        if math.isfinite(low) and math.isfinite(high) and not integer:
            candidates.append((low + high) / 2)  # a narrow open interval such as (0, 0.1)
        value = next((c for c in candidates if fits(c)), candidates[-1])
        return int(value) if integer else value


def _bound(
    schema: Mapping[str, Any], inclusive_key: str, exclusive_key: str, unbounded: float, tighter: Any
) -> tuple[float, bool]:
    """One side of a numeric range as (limit, open?), reading both draft-4 and later spellings."""
    limit, is_open = unbounded, False
    if isinstance(schema.get(inclusive_key), int | float):
        limit = float(schema[inclusive_key])
    exclusive = schema.get(exclusive_key)
    if exclusive is True:
        is_open = math.isfinite(limit)  # draft 4: a boolean that makes minimum/maximum exclusive
    elif isinstance(exclusive, int | float) and not isinstance(exclusive, bool):
        bound = float(exclusive)
        if tighter(bound, limit) == bound:
            limit, is_open = bound, True
    return limit, is_open

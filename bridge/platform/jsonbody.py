"""Platform JSON parsed with a bound on nesting, so nothing the bridge builds from it is too deep to decode.

A JSON object becomes a `google.protobuf.Struct` whose every level costs three protobuf levels (Struct, map
entry, Value), and protobuf refuses to decode a message nested deeper than 100. The platform's JSON is
therefore held to `max_depth` levels of objects and arrays (the `upstream_max_json_depth` setting, at most
32). orjson has no depth option, so depth is checked after parsing; counting brackets first (a C-speed
upper bound on the depth) spares the walk for every document that could not be too deep.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["TooDeep", "loads"]


class TooDeep(ValueError):
    """The document nests objects and arrays deeper than allowed."""


def loads(data: bytes | str, *, max_depth: int) -> Any:
    """`data` parsed (orjson's errors pass through), or TooDeep when it nests deeper than `max_depth`."""
    value = orjson.loads(data)
    raw = data.encode() if isinstance(data, str) else data
    if raw.count(b"{") + raw.count(b"[") > max_depth and _depth(value) > max_depth:
        raise TooDeep(f"nested deeper than {max_depth} levels")
    return value


def _depth(value: Any) -> int:
    """Levels of objects and arrays in `value`, walked without recursion (the input is untrusted)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest

"""JSON values <-> `google.protobuf.Struct`/`Value`, built field by field (json_format is far slower)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2

from bridge.convert.payload import PayloadError, json_type

__all__ = ["fill_struct", "fill_value", "struct_to_json", "value_to_json"]

# Integral doubles print as integers (`5`, not `5.0`) up to 2**53, where doubles stop being exact; JSON
# Schema keywords such as `maxLength` must be integers, and json_format renders them the same way.
_EXACT_INT_LIMIT = 2.0**53


def fill_struct(target: struct_pb2.Struct, obj: Mapping[str, Any]) -> None:
    """Copy a JSON object into `target` (which is marked present even when `obj` is empty)."""
    fields = target.fields
    for key, value in obj.items():
        if type(key) is not str:
            raise PayloadError(f"object key {key!r} is not a string")
        fill_value(fields[key], value)


def fill_value(target: struct_pb2.Value, value: Any) -> None:
    """Copy any decoded JSON value into `target`."""
    kind = type(value)
    if kind is str:
        target.string_value = value
    elif value is None:
        target.null_value = struct_pb2.NULL_VALUE
    elif kind is bool:
        target.bool_value = value
    elif kind is int or kind is float:
        target.number_value = value
    elif kind is dict:
        struct = target.struct_value
        struct.SetInParent()
        fill_struct(struct, value)
    elif kind is list:
        items = target.list_value
        items.SetInParent()
        values = items.values
        for item in value:
            fill_value(values.add(), item)
    else:
        raise PayloadError(f"{json_type(value)} is not a JSON value")


def struct_to_json(struct: struct_pb2.Struct) -> dict[str, Any]:
    """The JSON object a Struct holds; ValueError if it holds NaN or an infinity, which JSON cannot carry."""
    return {key: value_to_json(value) for key, value in struct.fields.items()}


def value_to_json(value: struct_pb2.Value) -> Any:
    """The JSON value a Value holds (a Value with no kind set reads as null)."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            raise ValueError("holds a number that is not finite (NaN or infinity), which JSON cannot carry")
        # Whole numbers go out as JSON integers, except -0.0, whose sign an integer cannot keep.
        negative_zero = number == 0 and math.copysign(1.0, number) < 0
        if number.is_integer() and -_EXACT_INT_LIMIT <= number <= _EXACT_INT_LIMIT and not negative_zero:
            return int(number)
        return number
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_json(value.struct_value)
    if kind == "list_value":
        return [value_to_json(item) for item in value.list_value.values]
    return None

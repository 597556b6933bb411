"""Reading the platform's JSON: the shape error and the typed readers every conversion uses."""

from __future__ import annotations

from typing import Any

__all__ = [
    "PayloadError",
    "expect_bool",
    "expect_dict",
    "expect_float",
    "expect_int",
    "expect_list",
    "expect_str",
    "json_type",
]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


class PayloadError(ValueError):
    """The platform's JSON does not have the expected shape; the message names the key, e.g. `input.user`."""

    def __init__(self, problem: str, *, key: str = "") -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key
        self.problem = problem

    def within(self, parent: str) -> PayloadError:
        """The same error, its key seen from the object that holds `parent`."""
        if not self.key:
            key = parent
        elif self.key.startswith("["):
            key = parent + self.key
        else:
            key = f"{parent}.{self.key}"
        return PayloadError(self.problem, key=key)


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _wrong(key: str, expected: str, value: object) -> PayloadError:
    return PayloadError(f"expected {expected}, got {json_type(value)}", key=key)


# Exact type checks (`type(v) is str`) are the cheapest, and JSON decoders produce exactly these types.


def expect_str(key: str, value: Any) -> str:
    """`value` if it is a string."""
    if type(value) is str:
        return value
    raise _wrong(key, "a string", value)


def expect_bool(key: str, value: Any) -> bool:
    """`value` if it is a boolean."""
    if value is True or value is False:
        return bool(value)
    raise _wrong(key, "a boolean", value)


def expect_int(key: str, value: Any) -> int:
    """`value` as a 64-bit integer: an integer, or a float without a fractional part (as pydantic accepts)."""
    kind = type(value)
    if kind is float and value.is_integer():
        value = int(value)
    elif kind is not int:
        raise _wrong(key, "an integer", value)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise PayloadError("integer out of the 64-bit range", key=key)
    return int(value)


def expect_float(key: str, value: Any) -> float:
    """`value` as a float: any JSON number."""
    kind = type(value)
    if kind is float or kind is int:
        return float(value)
    raise _wrong(key, "a number", value)


def expect_dict(key: str, value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object."""
    if type(value) is dict:
        return value
    raise _wrong(key, "an object", value)


def expect_list(key: str, value: Any) -> list[Any]:
    """`value` if it is a JSON array."""
    if type(value) is list:
        return value
    raise _wrong(key, "an array", value)

"""Platform datetimes -> `google.protobuf.Timestamp`, accepting what the SDK's pydantic models accept."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2

from bridge.convert.payload import PayloadError, json_type

__all__ = ["fill_timestamp", "now"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Pydantic reads epoch numbers beyond this magnitude as milliseconds rather than seconds.
_MILLISECONDS_ABOVE = 2e10
# google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799


def fill_timestamp(target: timestamp_pb2.Timestamp, key: str, value: Any) -> None:
    """Set `target` from ISO-8601 (`Z`, an offset, or naive meaning UTC) or epoch seconds or milliseconds."""
    kind = type(value)
    if kind is str:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                raise PayloadError(f"{value[:40]!r} is not an ISO-8601 datetime", key=key) from None
            _fill_epoch(target, key, number)
            return
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        # Integer arithmetic on the timedelta keeps microseconds exact; .timestamp() goes through a float.
        delta = moment - _EPOCH
        target.seconds = delta.days * 86_400 + delta.seconds
        target.nanos = delta.microseconds * 1000
    elif kind is int or kind is float:
        _fill_epoch(target, key, value)
    else:
        raise PayloadError(f"expected an ISO-8601 datetime, got {json_type(value)}", key=key)


def _fill_epoch(target: timestamp_pb2.Timestamp, key: str, number: float) -> None:
    if type(number) is int:
        if abs(number) > _MILLISECONDS_ABOVE:
            seconds, millis = divmod(number, 1000)
            nanos = millis * 1_000_000
        else:
            seconds, nanos = number, 0
    else:
        if not math.isfinite(number):
            raise PayloadError("datetime is not a finite number", key=key)
        if abs(number) > _MILLISECONDS_ABOVE:
            number /= 1000
        seconds = math.floor(number)
        nanos = round((number - seconds) * 1e9)
        if nanos >= 1_000_000_000:
            seconds, nanos = seconds + 1, nanos - 1_000_000_000
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS:
        raise PayloadError("datetime out of range", key=key)
    target.seconds = int(seconds)
    target.nanos = int(nanos)


def now() -> timestamp_pb2.Timestamp:
    """The current time."""
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)

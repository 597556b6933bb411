"""Upstream failures as bridge errors: transport exceptions, deadlines, unreadable answers, error text."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import httpx
import orjson

from bridge.errors import DeadlineExceeded, Internal, InvalidArgument, ResourceExhausted, Unavailable
from bridge.platform import jsonbody

__all__ = [
    "Unreachable",
    "deadline",
    "error_detail",
    "malformed",
    "retry_after",
    "too_deep",
    "translated",
]

_MAX_ERROR_TEXT: Final = 300


class Unreachable(Unavailable):
    """A connection could not be opened, so the request was never sent: safe to retry a read."""


@contextmanager
def translated(route: str) -> Iterator[None]:
    """Turn httpx exceptions into bridge errors (connection failures first as `Unreachable`)."""
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout) as error:
        what = "timed out" if isinstance(error, httpx.ConnectTimeout) else reason_of(error)
        raise Unreachable(
            f"could not connect to the platform for {route}: {what}",
            reason="UPSTREAM_UNREACHABLE",
            metadata={"route": route},
        ) from error
    except httpx.LocalProtocolError as error:
        raise InvalidArgument(
            f"the request to the platform for {route} cannot be sent: {reason_of(error)}",
            reason="UNSAFE_UPSTREAM_REQUEST",
            metadata={"route": route},
        ) from error
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.CloseError) as error:
        raise Unavailable(
            f"the platform connection broke during {route}: {reason_of(error)}",
            reason="UPSTREAM_CONNECTION_LOST",
            metadata={"route": route},
        ) from error
    except httpx.TimeoutException as error:
        raise deadline(route) from error
    except httpx.HTTPError as error:
        raise Internal(
            f"calling the platform for {route} failed: {type(error).__name__}",
            reason="UPSTREAM_REQUEST_FAILED",
            metadata={"route": route},
        ) from error


def reason_of(error: Exception) -> str:
    text = str(error).strip()
    return text[:_MAX_ERROR_TEXT] if text else type(error).__name__


def deadline(route: str) -> DeadlineExceeded:
    return DeadlineExceeded(
        f"the platform did not answer {route} within the call's deadline",
        reason="UPSTREAM_TIMEOUT",
        metadata={"route": route},
    )


def malformed(route: str, status: int, problem: str) -> Internal:
    return Internal(
        f"the platform answered {route} with a body the bridge cannot read: {problem}",
        reason="UPSTREAM_MALFORMED_RESPONSE",
        metadata={"route": route, "http_status": str(status)},
    )


def too_deep(route: str, limit: int) -> ResourceExhausted:
    return ResourceExhausted(
        f"the platform's answer to {route} nests JSON deeper than the bridge accepts ({limit} levels)",
        reason="UPSTREAM_JSON_TOO_DEEP",
        metadata={"route": route, "limit": str(limit)},
    )


def error_detail(body: bytes, max_depth: int) -> str:
    """The platform's explanation: FastAPI's `detail` (string or validation list), else the body text."""
    try:
        parsed = jsonbody.loads(body, max_depth=max_depth) if body else None
    except (orjson.JSONDecodeError, jsonbody.TooDeep):
        return body.decode("utf-8", "replace").strip()[:_MAX_ERROR_TEXT]
    if isinstance(parsed, dict):
        detail = parsed.get("detail", parsed.get("error", parsed.get("message")))
        if isinstance(detail, str):
            return detail[:_MAX_ERROR_TEXT]
        if isinstance(detail, list):
            return "; ".join(_validation_item(item) for item in detail[:20])[:_MAX_ERROR_TEXT]
        if detail is not None:
            return orjson.dumps(detail).decode()[:_MAX_ERROR_TEXT]
    return "" if parsed is None else orjson.dumps(parsed).decode()[:_MAX_ERROR_TEXT]


def _validation_item(item: Any) -> str:
    if isinstance(item, dict) and "msg" in item:
        location = item.get("loc")
        where = ".".join(str(part) for part in location) if isinstance(location, list) else ""
        return f"{where}: {item['msg']}" if where else str(item["msg"])
    return orjson.dumps(item).decode()


def retry_after(value: str | None, cap: float) -> float | None:
    """Seconds from `Retry-After` (delta-seconds or an HTTP date), at most `cap`; None when unreadable."""
    if value is None or not value.strip() or len(value) > 64:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
            seconds = when.timestamp() - time.time()
        except (TypeError, ValueError, OverflowError):
            return None
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), cap)

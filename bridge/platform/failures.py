"""Upstream failures as bridge errors: transport exceptions, deadlines and unreadable answers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import httpx

from bridge.errors import DeadlineExceeded, Internal, InvalidArgument, Unavailable

__all__ = ["Unreachable", "deadline", "malformed", "translated"]

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

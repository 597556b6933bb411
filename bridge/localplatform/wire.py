"""What every response of the local platform shares: the JSON encoder, the clock format and the error body."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import orjson
from aiohttp import web

__all__ = ["ApiError", "dumps", "error_response", "json_response", "now_iso"]


def dumps(value: object) -> bytes:
    """Serialise a JSON value compactly (UTF-8 bytes)."""
    return orjson.dumps(value)


def now_iso() -> str:
    """The current UTC time in the platform's ISO-8601 form, e.g. `2026-11-25T09:43:34.187708Z`."""
    # isoformat() always ends in "+00:00" for an aware UTC datetime; the platform writes "Z".
    return datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def json_response(body: bytes, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A response carrying already-serialised JSON: the SDK parses a body only if it is `application/json`."""
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


def error_response(status: int, detail: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """The platform's (FastAPI-style) error body, `{"detail": "..."}`."""
    return json_response(dumps({"detail": detail}), status=status, headers=headers)


class ApiError(Exception):
    """Raised by a handler to answer with an error status and a `{"detail": ...}` body."""

    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers

    def response(self) -> web.Response:
        """The HTTP response this error stands for."""
        return error_response(self.status, self.detail, self.headers)

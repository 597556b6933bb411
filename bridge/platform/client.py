"""The platform's HTTP API as the bridge uses it: four REST calls and the task event stream.

`PlatformClient` knows nothing of gRPC or generated code. It takes plain values and per-call credentials,
returns parsed JSON, and raises bridge errors (`bridge.errors`): a non-2xx answer through `from_http_status`
with the FastAPI `{"detail": ...}` body and `Retry-After` honoured (capped); transport failures through one
translation (`bridge.platform.failures.translated`). Unary calls share one keep-alive connection pool; event
streams get their own, with a large connection limit and no read timeout, so long-lived streams never hold
connections unary calls wait for. Both pools are `bridge.platform.transport.HttpTransport`s unless others
are given.

Requests are `httpx.Request`s handed straight to the transport: no redirects are followed (one would carry
the key wherever it points), no cookies kept (they would be shared by every caller of the bridge), no auth
added, so an `httpx.AsyncClient` would add CPU and nothing else. Every answer is bounded
(`UpstreamLimits`): body size after decompression, JSON depth, Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Final
from urllib.parse import quote

import httpx
import orjson

from bridge.credentials import Credentials
from bridge.errors import BridgeError, ResourceExhausted, from_http_status
from bridge.platform import jsonbody
from bridge.platform.body import ACCEPT_ENCODING, BodyTooLarge, UnsupportedEncoding, read_body
from bridge.platform.eventstream import EventStream
from bridge.platform.failures import (
    Unreachable,
    error_detail,
    malformed,
    retry_after,
    too_deep,
    translated,
)
from bridge.platform.failures import deadline as deadline_error

__all__ = ["ROUTE_EXTENSION", "EventStream", "PlatformClient", "UpstreamLimits"]

_log = logging.getLogger(__name__)

ROUTE_EXTENSION: Final = "bridge.route"
"""Key of the route name in every request's httpx `extensions`."""

_USER_HISTORY_PREFIX = "agent-execution/executions/history/user/"
# An error answer is read only for its explanation; the rest is dropped unread.
_MAX_ERROR_BODY = 64 * 1024
# Waits between attempts of a read whose connection could not be opened (the request was never sent).
_CONNECT_RETRY_DELAYS = (0.05, 0.2, 0.5)
_USER_AGENT = f"xpander-bridge/{metadata.version('xpander-bridge')}"


@dataclass(frozen=True, slots=True)
class UpstreamLimits:
    """Bounds on what the platform may send (the `upstream_max_*` and `sse_max_event_bytes` settings)."""

    body_bytes: int = 8 * 1024 * 1024
    json_depth: int = 32
    retry_after: float = 3600.0
    event_bytes: int = 4 * 1024 * 1024


class PlatformClient:
    """Calls the platform with per-call credentials. Create once, `aclose()` (or `async with`) at shutdown.

    Every request carries its route name in `request.extensions["bridge.route"]`, so a wrapping transport
    can label what it observes. `transport` and `stream_transport` are the two pools' transports; the client
    closes them.
    """

    def __init__(
        self,
        *,
        base_url: str,
        events_base_url: str,
        org_in_rest_path: bool,
        transport: httpx.AsyncBaseTransport,
        stream_transport: httpx.AsyncBaseTransport,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        read_retries: int = 2,
        limits: UpstreamLimits | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._events_base_url = events_base_url.rstrip("/")
        self._org_in_rest_path = org_in_rest_path
        self._unary = transport
        self._streams = stream_transport
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._read_retries = read_retries
        self._limits = limits or UpstreamLimits()
        # No read timeout: a stream may be idle for as long as its task is; heartbeats cover idleness.
        self._stream_timeout: Final = httpx.Timeout(None, connect=connect_timeout).as_dict()
        self._urls = _URLCache()

    @property
    def base_url(self) -> str:
        """The REST base URL calls go to."""
        return self._base_url

    @property
    def events_base_url(self) -> str:
        """The host event streams are read from."""
        return self._events_base_url

    async def aclose(self) -> None:
        """Close both connection pools."""
        await asyncio.gather(self._unary.aclose(), self._streams.aclose())

    async def __aenter__(self) -> PlatformClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- REST --------------------------------------------------------------------------------------------

    async def create_task(
        self,
        agent_id: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        creds: Credentials,
        *,
        budget: float | None = None,
    ) -> dict[str, Any]:
        """`POST /agent-execution/{agent_id}`: the created Task JSON. Never retried."""
        path = f"agent-execution/{_segment(agent_id)}"
        data = await self._call(
            "POST", path, "create_task", creds, budget, json_body=body, extra_headers=headers, retry=False
        )
        return _expect_object(data, "create_task")

    async def get_task(
        self, task_id: str, creds: Credentials, *, budget: float | None = None
    ) -> dict[str, Any]:
        """`GET /agent-execution/{task_id}/status`: the Task JSON."""
        path = f"agent-execution/{_segment(task_id)}/status"
        data = await self._call("GET", path, "get_task", creds, budget, retry=True)
        return _expect_object(data, "get_task")

    async def stop_task(
        self, task_id: str, creds: Credentials, *, budget: float | None = None
    ) -> dict[str, Any]:
        """`DELETE /agent-execution/{task_id}`: the Task JSON after the stop. Never retried."""
        path = f"agent-execution/{_segment(task_id)}"
        data = await self._call("DELETE", path, "stop_task", creds, budget, retry=False)
        return _expect_object(data, "stop_task")

    async def list_tasks(
        self,
        path: str,
        query: Mapping[str, str],
        creds: Credentials,
        *,
        budget: float | None = None,
    ) -> list[Any]:
        """`GET` a history route (`path` relative to the REST prefix, already safe): the whole JSON array."""
        route = "list_user_tasks" if path.lstrip("/").startswith(_USER_HISTORY_PREFIX) else "list_tasks"
        data = await self._call("GET", path.lstrip("/"), route, creds, budget, query=query, retry=True)
        if not isinstance(data, list):
            raise malformed(route, 200, f"expected a JSON array, got {_json_type(data)}")
        return data

    async def _call(
        self,
        method: str,
        path: str,
        route: str,
        creds: Credentials,
        budget: float | None,
        *,
        json_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        retry: bool,
    ) -> Any:
        budget = self._read_timeout if budget is None else min(budget, self._read_timeout)
        if budget <= 0:
            raise deadline_error(route)
        text = f"{self._rest_prefix(creds)}/{path}"
        # Query strings (list calls only) vary too much to be worth caching.
        url = httpx.URL(text, params=query) if query else self._urls.get(text)
        headers = {**(extra_headers or {}), "x-api-key": creds.api_key, "accept-encoding": ACCEPT_ENCODING}
        content = orjson.dumps(dict(json_body)) if json_body is not None else None
        if content is not None:
            headers["content-type"] = "application/json"
        # httpx.Timeout(budget, connect=...).as_dict(), as `build_request(timeout=...)` would put it.
        timeout = {
            "connect": min(self._connect_timeout, budget),
            "read": budget,
            "write": budget,
            "pool": budget,
        }
        request = _request(method, url, headers, content, {ROUTE_EXTENSION: route, "timeout": timeout})
        deadline = time.monotonic() + budget
        attempts = 1 + (self._read_retries if retry else 0)
        try:
            async with asyncio.timeout(budget):
                attempt = 1
                while True:
                    try:
                        with translated(route):
                            response = await self._unary.handle_async_request(request)
                        break
                    except Unreachable:
                        delay = _CONNECT_RETRY_DELAYS[min(attempt, len(_CONNECT_RETRY_DELAYS)) - 1]
                        if attempt >= attempts or time.monotonic() + delay >= deadline:
                            raise
                        _log.debug("retrying %s after a connection failure (attempt %d)", route, attempt)
                        attempt += 1
                        await asyncio.sleep(delay)
                try:
                    if not response.is_success:
                        raise await self._http_error(response, route)
                    body = await self._read(response, route)
                finally:
                    await response.aclose()
        except TimeoutError as error:
            raise deadline_error(route) from error
        return self._parse_json(response, body, route)

    def _rest_prefix(self, creds: Credentials) -> str:
        if not self._org_in_rest_path:
            return self._base_url
        organization_id = creds.require_organization(f"the platform at {self._base_url}")
        return f"{self._base_url}/{_segment(organization_id)}"

    async def _read(self, response: httpx.Response, route: str) -> bytes:
        limit = self._limits.body_bytes
        try:
            with translated(route):
                return await read_body(response, limit=limit)
        except BodyTooLarge:
            raise ResourceExhausted(
                f"the platform's answer to {route} is larger than the bridge accepts ({limit} bytes)",
                reason="UPSTREAM_BODY_TOO_LARGE",
                metadata={"route": route, "limit": str(limit)},
            ) from None
        except UnsupportedEncoding as error:
            raise malformed(route, response.status_code, str(error)) from None

    def _parse_json(self, response: httpx.Response, body: bytes, route: str) -> Any:
        content_type = response.headers.get("content-type", "")
        if "application/json" not in content_type:
            raise malformed(route, response.status_code, f"Content-Type {content_type!r} is not JSON")
        try:
            return jsonbody.loads(body, max_depth=self._limits.json_depth)
        except jsonbody.TooDeep:
            raise too_deep(route, self._limits.json_depth) from None
        except orjson.JSONDecodeError as error:
            raise malformed(route, response.status_code, "the body is not valid JSON") from error

    async def _http_error(self, response: httpx.Response, route: str) -> BridgeError:
        try:
            with translated(route):
                body = await read_body(response, limit=_MAX_ERROR_BODY, truncate=True)
        except (BridgeError, UnsupportedEncoding):
            body = b""  # the status alone still says what went wrong
        return from_http_status(
            response.status_code,
            error_detail(body, self._limits.json_depth),
            route=route,
            retry_after=retry_after(response.headers.get("retry-after"), self._limits.retry_after),
        )

    # --- Event stream ------------------------------------------------------------------------------------

    @asynccontextmanager
    async def stream_events(
        self, task_id: str, creds: Credentials, *, last_event_id: int | None = None
    ) -> AsyncIterator[EventStream]:
        """Open the task's event stream (`GET {events_root}/agent-execution/{task_id}/events`) for the block.

        Sends `Last-Event-ID` when `last_event_id` is given. Raises bridge errors for a non-2xx answer or a
        response that is not `text/event-stream`; read failures surface from iterating the `EventStream`.
        """
        route = "task_events"
        organization_id = creds.require_organization("streaming task events")
        url = self._urls.get(
            f"{self._events_base_url}/{_segment(organization_id)}/agent-execution/{_segment(task_id)}/events"
        )
        headers = {
            "x-api-key": creds.api_key,
            "accept": "text/event-stream",
            "accept-encoding": "identity",
            "cache-control": "no-store",
        }
        if last_event_id is not None:
            headers["last-event-id"] = str(last_event_id)
        request = _request(
            "GET", url, headers, None, {ROUTE_EXTENSION: route, "timeout": self._stream_timeout}
        )
        with translated(route):
            response = await self._streams.handle_async_request(request)
        try:
            if not response.is_success:
                raise await self._http_error(response, route)
            content_type = response.headers.get("content-type", "")
            if "text/event-stream" not in content_type:
                raise malformed(
                    route, response.status_code, f"Content-Type {content_type!r} is not text/event-stream"
                )
            yield EventStream(
                response,
                task_id,
                max_event_bytes=self._limits.event_bytes,
                max_json_depth=self._limits.json_depth,
            )
        finally:
            await response.aclose()


def _request(
    method: str, url: httpx.URL, headers: Mapping[str, str], content: bytes | None, extensions: dict[str, Any]
) -> httpx.Request:
    """The request with `Host`, a user agent, `headers` and the body's `Content-Length`.

    The body is passed as a stream, which makes `httpx.Request` skip working the headers out again.
    """
    raw = [(b"Host", url.netloc), (b"User-Agent", _USER_AGENT.encode("ascii"))]
    raw += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    body = content or b""
    if body or method in ("POST", "PUT", "PATCH"):
        raw.append((b"Content-Length", str(len(body)).encode("ascii")))
    request = httpx.Request(method, url, headers=raw, stream=httpx.ByteStream(body), extensions=extensions)
    request.read()
    return request


class _URLCache:
    """Parsed URLs by their text, the latest `size` of them: parsing costs most of building a request.

    Most calls repeat a URL (the same agent's creates, polls of one task), and `httpx.URL` is immutable.
    """

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._parsed: dict[str, httpx.URL] = {}

    def get(self, text: str) -> httpx.URL:
        url = self._parsed.get(text)
        if url is None:
            url = httpx.URL(text)
            if len(self._parsed) >= self._size:
                del self._parsed[next(iter(self._parsed))]
            self._parsed[text] = url
        return url


# --- Errors ------------------------------------------------------------------------------------------------


def _expect_object(data: Any, route: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise malformed(route, 200, f"expected a JSON object, got {_json_type(data)}")
    return data


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _segment(value: str) -> str:
    """`value` as one URL path segment; ids are validated upstream, quoting is defence in depth."""
    return quote(value, safe="")

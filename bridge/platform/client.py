"""The platform's HTTP API as the bridge uses it: four REST calls and the task event stream.

`PlatformClient` knows nothing of gRPC or generated code. It takes plain values and per-call credentials,
returns parsed JSON, and raises bridge errors (`bridge.errors`): a non-2xx answer through `from_http_status`
with the FastAPI `{"detail": ...}` body and `Retry-After` honoured; transport failures through one translation
(`_translated`). Unary calls share one connection pool; event streams get their own, with a large connection
limit and no read timeout, so long-lived streams never hold connections unary calls wait for.

Each pool is an `httpx.AsyncClient`, but requests are built here (from URLs parsed once, see `_URLCache`)
and, when a transport is given, handed straight to it (see `_Pool`): the client follows no redirects, sends no
httpx auth and keeps no cookies, so `build_request` and `send` would spend CPU on machinery doing nothing.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final
from urllib.parse import quote

import httpx
import orjson

from bridge.credentials import Credentials
from bridge.errors import (
    BridgeError,
    from_http_status,
)
from bridge.platform.eventstream import EventStream
from bridge.platform.failures import Unreachable, malformed, translated
from bridge.platform.failures import deadline as deadline_error

__all__ = ["ROUTES", "ROUTE_EXTENSION", "EventStream", "PlatformClient"]

_log = logging.getLogger(__name__)

ROUTE_EXTENSION: Final = "bridge.route"
"""Key of the route name in every request's httpx `extensions`."""

ROUTES: Final = ("create_task", "get_task", "stop_task", "list_tasks", "list_user_tasks", "task_events")
"""Names of the platform routes, as used in error metadata and logs."""

_USER_HISTORY_PREFIX = "agent-execution/executions/history/user/"
_MAX_ERROR_TEXT = 300
# Methods httpx gives `Content-Length: 0` when they have no body.
_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))
# Waits between attempts of a read whose connection could not be opened (the request was never sent).
_CONNECT_RETRY_DELAYS = (0.05, 0.2, 0.5)


class PlatformClient:
    """Calls the platform with per-call credentials. Create once, `aclose()` (or `async with`) at shutdown.

    Every request carries its route name (see `ROUTES`) in `request.extensions["bridge.route"]`, so a custom
    `transport` can label what it observes. A given transport's pool limits replace `max_connections`.
    """

    def __init__(
        self,
        *,
        base_url: str,
        events_base_url: str,
        org_in_rest_path: bool,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_connections: int = 100,
        stream_max_connections: int = 10_000,
        read_retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
        stream_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._events_base_url = events_base_url.rstrip("/")
        self._org_in_rest_path = org_in_rest_path
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._read_retries = read_retries
        # Redirects are never followed: the platform does not redirect, and following one would carry the
        # key to wherever it points.
        self._unary = _Pool(
            httpx.AsyncClient(
                transport=transport,
                follow_redirects=False,
                timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
                limits=httpx.Limits(
                    max_connections=max_connections, max_keepalive_connections=max_connections
                ),
            ),
            transport,
            self._base_url,
        )
        self._streams = _Pool(
            httpx.AsyncClient(
                transport=stream_transport,
                follow_redirects=False,
                limits=httpx.Limits(max_connections=stream_max_connections, max_keepalive_connections=0),
            ),
            stream_transport,
            self._events_base_url,
        )
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
        await asyncio.gather(self._unary.client.aclose(), self._streams.client.aclose())

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
        headers = {**(extra_headers or {}), "x-api-key": creds.api_key}
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
        request = self._unary.request(
            method, url, headers, content, {ROUTE_EXTENSION: route, "timeout": timeout}
        )
        deadline = time.monotonic() + budget
        attempts = 1 + (self._read_retries if retry else 0)
        try:
            async with asyncio.timeout(budget):
                attempt = 1
                while True:
                    try:
                        with translated(route):
                            response = await self._unary.send(request)
                        break
                    except Unreachable:
                        delay = _CONNECT_RETRY_DELAYS[min(attempt, len(_CONNECT_RETRY_DELAYS)) - 1]
                        if attempt >= attempts or time.monotonic() + delay >= deadline:
                            raise
                        _log.debug("retrying %s after a connection failure (attempt %d)", route, attempt)
                        attempt += 1
                        await asyncio.sleep(delay)
        except TimeoutError as error:
            raise deadline_error(route) from error
        return _parse_json(response, route)

    def _rest_prefix(self, creds: Credentials) -> str:
        if not self._org_in_rest_path:
            return self._base_url
        organization_id = creds.require_organization(f"the platform at {self._base_url}")
        return f"{self._base_url}/{_segment(organization_id)}"

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
        headers = {"x-api-key": creds.api_key, "accept": "text/event-stream", "cache-control": "no-store"}
        if last_event_id is not None:
            headers["last-event-id"] = str(last_event_id)
        with translated(route):
            request = self._streams.request(
                "GET", url, headers, None, {ROUTE_EXTENSION: route, "timeout": self._stream_timeout}
            )
            async with _opened(self._streams, request) as response:
                if not response.is_success:
                    await response.aread()
                    raise _http_error(response, route)
                content_type = response.headers.get("content-type", "")
                if "text/event-stream" not in content_type:
                    raise malformed(
                        route,
                        response.status_code,
                        f"Content-Type {content_type!r} is not text/event-stream",
                    )
                yield EventStream(response, task_id)


class _Pool:
    """One connection pool: its `httpx.AsyncClient`, which owns (and at `aclose` closes) the transport.

    Requests get the client's default headers (`User-Agent`, `Accept`, ...) as `build_request` gives them.
    With a transport given, `send` hands requests to it directly and reads the body as `AsyncClient.send`
    does. `send`'s remaining work buys nothing here: redirects are never followed, the client has no auth, and
    the platform's cookies are not kept (they would be shared by every caller of the bridge). Without a
    transport (httpx's own pool, with the proxies it reads from the environment), or with credentials in the
    base URL (httpx's basic auth), requests go through `AsyncClient.send`.
    """

    def __init__(
        self, client: httpx.AsyncClient, transport: httpx.AsyncBaseTransport | None, base: str
    ) -> None:
        self.client = client
        self._transport = transport if not httpx.URL(base).userinfo else None
        self._defaults = [(name.decode("latin-1").lower(), name, value) for name, value in client.headers.raw]

    def request(
        self,
        method: str,
        url: httpx.URL,
        headers: Mapping[str, str],
        content: bytes | None,
        extensions: dict[str, Any],
    ) -> httpx.Request:
        """The request `client.build_request` would make, with the headers `httpx.Request` would add.

        That is `Host`, the client's defaults (unless `headers` override them), `headers`, and the body's
        `Content-Length`, in httpx's order. The body is passed as a stream, which makes `httpx.Request` skip
        working all that out again (and re-building its headers twice) on every call.
        """
        names = {name.lower() for name in headers}
        raw = [] if "host" in names else [(b"Host", url.netloc)]
        body = content or b""
        if not body and method in _BODY_METHODS and not names & {"content-length", "transfer-encoding"}:
            raw.append((b"Content-Length", b"0"))
        raw += [(name, value) for lower, name, value in self._defaults if lower not in names]
        raw += [(name.encode("ascii"), value.encode("ascii")) for name, value in headers.items()]
        if body and "content-length" not in names:
            raw.append((b"Content-Length", str(len(body)).encode("ascii")))
        stream = httpx.ByteStream(body)
        request = httpx.Request(method, url, headers=raw, stream=stream, extensions=extensions)
        request.read()
        return request

    async def send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        """The response to `request`, its body read unless `stream`; raises httpx's exceptions."""
        if self._transport is None:
            return await self.client.send(request, stream=stream)
        if self.client.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        response = await self._transport.handle_async_request(request)
        response.request = request
        if not stream:
            try:
                await response.aread()
            except BaseException:
                await response.aclose()
                raise
        return response


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


@asynccontextmanager
async def _opened(pool: _Pool, request: httpx.Request) -> AsyncIterator[httpx.Response]:
    """`request` sent with its body left unread (a stream); the response is closed when the block ends."""
    response = await pool.send(request, stream=True)
    try:
        yield response
    finally:
        await response.aclose()


# --- Errors ------------------------------------------------------------------------------------------------


def _parse_json(response: httpx.Response, route: str) -> Any:
    if not response.is_success:
        raise _http_error(response, route)
    content_type = response.headers.get("content-type", "")
    if "application/json" not in content_type:
        raise malformed(route, response.status_code, f"Content-Type {content_type!r} is not JSON")
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as error:
        raise malformed(route, response.status_code, "the body is not valid JSON") from error


def _expect_object(data: Any, route: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise malformed(route, 200, f"expected a JSON object, got {_json_type(data)}")
    return data


def _http_error(response: httpx.Response, route: str) -> BridgeError:
    return from_http_status(
        response.status_code,
        _error_detail(response),
        route=route,
        retry_after=_retry_after(response.headers.get("retry-after")),
    )


def _error_detail(response: httpx.Response) -> str:
    """The platform's explanation: FastAPI's `detail` (string or validation list), else the body text."""
    try:
        body = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        return response.text.strip()[:_MAX_ERROR_TEXT]
    if isinstance(body, dict):
        detail = body.get("detail", body.get("error", body.get("message")))
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list):
            return "; ".join(_validation_item(item) for item in detail)
        if detail is not None:
            return orjson.dumps(detail).decode()[:_MAX_ERROR_TEXT]
    return "" if body is None else orjson.dumps(body).decode()[:_MAX_ERROR_TEXT]


def _validation_item(item: Any) -> str:
    if isinstance(item, dict) and "msg" in item:
        location = item.get("loc")
        where = ".".join(str(part) for part in location) if isinstance(location, list) else ""
        return f"{where}: {item['msg']}" if where else str(item["msg"])
    return orjson.dumps(item).decode()


def _retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(seconds, 0.0)


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _segment(value: str) -> str:
    """`value` as one URL path segment; ids are validated upstream, quoting is defence in depth."""
    return quote(value, safe="")

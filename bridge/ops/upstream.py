"""The HTTP transport under the platform client: metrics, a span and trace/request-id headers per request.

The server wraps each pool's transport with `upstream_transport(inner)`; the platform client names each
request's route in its extensions (`extensions={ROUTE_EXTENSION: "create_task"}`).
Requests without one are counted under `other`, never under their URL, whose ids would grow the label set.
Latency is measured to the response headers, which for an event stream is the time to connect.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from urllib.parse import urlsplit

import httpx

from bridge.ops.logs import REQUEST_ID_METADATA, current_request_id
from bridge.ops.metrics import BridgeMetrics
from bridge.ops.tracing import Tracing
from bridge.platform.client import ROUTE_EXTENSION
from bridge.platform.transport import HttpTransport

__all__ = ["ROUTE_EXTENSION", "ObservedTransport", "environment_proxy", "upstream_transport"]


_UNNAMED_ROUTE = "other"


class ObservedTransport(httpx.AsyncBaseTransport):
    """Wraps a transport: forwards the request id and trace context, and records each request."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        metrics: BridgeMetrics | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._inner = inner
        self._metrics = metrics
        self._tracing = tracing

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        route = str(request.extensions.get(ROUTE_EXTENSION) or _UNNAMED_ROUTE)
        request_id = current_request_id()
        if request_id is not None and REQUEST_ID_METADATA not in request.headers:
            request.headers[REQUEST_ID_METADATA] = request_id
        if self._tracing is None:
            return await self._timed(route, request)
        # The URL carries ids but never credentials (those travel in headers), so it may go on the span.
        with self._tracing.client_span(route, request.method, str(request.url)) as span:
            carrier: dict[str, str] = {}
            self._tracing.inject(carrier)
            request.headers.update(carrier)
            response = await self._timed(route, request)
            span.set_attribute("http.response.status_code", response.status_code)
            return response

    async def _timed(self, route: str, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException as error:
            if self._metrics is not None:
                outcome = "cancelled" if isinstance(error, asyncio.CancelledError) else "error"
                self._metrics.record_upstream(route, outcome, time.perf_counter() - started)
            raise
        if self._metrics is not None:
            self._metrics.record_upstream(route, response.status_code, time.perf_counter() - started)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def upstream_transport(
    inner: httpx.AsyncBaseTransport | None = None,
    *,
    metrics: BridgeMetrics | None = None,
    tracing: Tracing | None = None,
) -> httpx.AsyncBaseTransport:
    """`inner` (by default the bridge's own `HttpTransport`, verifying against the system CAs) observed."""
    return ObservedTransport(inner or HttpTransport(), metrics=metrics, tracing=tracing)


def environment_proxy(url: str) -> str | None:
    """The proxy that `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` name for `url`, unless `NO_PROXY` exempts it.

    An `httpx.AsyncClient` given its own transport reads no proxy from the environment; the platform client's
    pools each talk to one host, so the proxy is chosen once per pool, here.
    """
    parts = urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(parts.scheme) or proxies.get("all") or None

"""The aiohttp application: the route table (each route with and without `/{organization_id}`) and the one
middleware every platform request passes: injected faults, then API key, then organization, then the handler,
with every error answered as `{"detail": ...}` JSON and every answer counted per route and status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from bridge.localplatform import control, handlers
from bridge.localplatform.state import CLOSE_CLEANLY, COUNTED, DROP_AFTER, STATE, PlatformState
from bridge.localplatform.stream import task_events
from bridge.localplatform.wire import ApiError, error_response

__all__ = ["build_app"]

_log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# (method, path without the organization segment, route name used by faults and stats, handler).
# The paths are fixed by the SDK; order matters only where two could match the same path.
_PLATFORM_ROUTES: tuple[tuple[str, str, str, Handler], ...] = (
    ("POST", "/agent-execution/{agent_id}", "create_task", handlers.create_task),
    ("GET", "/agent-execution/{task_id}/status", "get_task", handlers.get_task),
    ("DELETE", "/agent-execution/{task_id}", "stop_task", handlers.stop_task),
    ("PATCH", "/agent-execution/{task_id}/update", "update_task", handlers.update_task),
    (
        "GET",
        "/agent-execution/executions/history/user/{user_id}",
        "list_user_tasks",
        handlers.list_user_tasks,
    ),
    ("GET", "/agent-execution/executions/history/{agent_id}", "list_tasks", handlers.list_tasks),
    ("GET", "/agent-execution/{task_id}/events", "task_events", task_events),
    ("GET", "/agents/list", "list_agents", handlers.list_agents),
    ("GET", "/agents/{agent_id}", "get_agent", handlers.get_agent),
)

_CONTROL_ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/_local/faults", control.list_faults),
    ("POST", "/_local/faults", control.add_fault),
    ("DELETE", "/_local/faults", control.clear_faults),
    ("GET", "/_local/stats", control.get_stats),
    ("DELETE", "/_local/stats", control.reset_stats),
)

_ROUTE_NAMES = web.AppKey("local_platform_route_names", dict[AbstractRoute, str])
_UNMATCHED = "unmatched"


def build_app(state: PlatformState) -> web.Application:
    """The application serving `state`. It never redirects: no path-normalising middleware on purpose."""
    app = web.Application(middlewares=[_middleware])
    app[STATE] = state
    for method, path, control_handler in _CONTROL_ROUTES:
        app.router.add_route(method, path, control_handler)
    names: dict[AbstractRoute, str] = {}
    for prefix in ("", "/{org}"):
        for method, path, name, handler in _PLATFORM_ROUTES:
            names[app.router.add_route(method, prefix + path, handler)] = name
    app[_ROUTE_NAMES] = names
    return app


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    name = request.app[_ROUTE_NAMES].get(request.match_info.route)
    if name is None and request.match_info.http_exception is None:
        return await _answer(request, handler)  # a control route: no key, no faults, not counted
    response = await _answer(request, handler if name is None else _guard(state, name, handler))
    if not request.get(COUNTED):
        state.stats.count(name or _UNMATCHED, response.status)
    return response


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run the handler; whatever it raises becomes a JSON error body."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:  # the router's own 404/405 (and 413 for an oversized body)
        allow = exc.headers.get("Allow")
        return error_response(exc.status, exc.reason, {"Allow": allow} if allow is not None else None)
    except Exception:
        _log.exception("local platform failed on %s %s", request.method, request.path)
        return error_response(500, "internal error in the local platform")


def _guard(state: PlatformState, name: str, handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        if state.faults:
            fault = state.faults.take(name)
            if fault is not None:
                if fault.latency:
                    await asyncio.sleep(fault.latency)
                if fault.status is not None:
                    retry = fault.retry_after
                    headers = {"Retry-After": str(retry)} if retry is not None else None
                    return error_response(fault.status, fault.error_detail(), headers)
                if fault.drop_after_events is not None:
                    request[DROP_AFTER] = fault.drop_after_events
                    request[CLOSE_CLEANLY] = fault.close_cleanly
        if state.api_keys:
            key = request.headers.get("x-api-key")
            if key is None:
                raise ApiError(401, "missing x-api-key header")
            if key not in state.api_keys:
                raise ApiError(403, "invalid API key")
        org = request.match_info.get("org")
        if org is not None and org != state.organization_id:
            raise ApiError(403, f"organization {org} is not accessible with this API key")
        return await handler(request)

    return guarded

"""Test controls under `/_local/`: inject faults, read and reset counters. No API key, no org prefix."""

from __future__ import annotations

from aiohttp import web

from bridge.localplatform.bodies import TERMINAL_STATUSES, parse_body
from bridge.localplatform.faults import Fault
from bridge.localplatform.state import STATE, PlatformState
from bridge.localplatform.wire import dumps, json_response

__all__ = ["add_fault", "clear_faults", "get_stats", "list_faults", "reset_stats"]


async def add_fault(request: web.Request) -> web.Response:
    """`POST /_local/faults`: activate one fault rule; answers every active rule."""
    state = request.app[STATE]
    state.faults.add(parse_body(Fault, await request.read()))
    return _faults(state)


async def list_faults(request: web.Request) -> web.Response:
    """`GET /_local/faults`: the active rules with their remaining uses."""
    return _faults(request.app[STATE])


async def clear_faults(request: web.Request) -> web.Response:
    """`DELETE /_local/faults`: drop every rule."""
    state = request.app[STATE]
    state.faults.clear()
    return _faults(state)


async def get_stats(request: web.Request) -> web.Response:
    """`GET /_local/stats`: requests per route and status, open event streams, tasks held."""
    return _stats(request.app[STATE])


async def reset_stats(request: web.Request) -> web.Response:
    """`DELETE /_local/stats`: zero the request counts, so a test can look at only what it caused."""
    state = request.app[STATE]
    state.stats.reset()
    return _stats(state)


def _faults(state: PlatformState) -> web.Response:
    return json_response(dumps({"faults": state.faults.describe()}))


def _stats(state: PlatformState) -> web.Response:
    store = state.store
    running = sum(1 for record in store if record.task["status"] not in TERMINAL_STATUSES)
    snapshot = state.stats.snapshot(tasks=len(store), running_tasks=running, evicted_tasks=store.evicted)
    return json_response(dumps(snapshot))

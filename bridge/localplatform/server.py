"""`LocalPlatform`: start and stop the emulated platform in-process, on any host and port (0 = any free)."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from aiohttp import web

from bridge.localplatform.app import build_app
from bridge.localplatform.state import PlatformState

__all__ = ["LocalPlatform"]

# Open event streams are ended by `stop()` itself; this only bounds a handler that still lingers.
_SHUTDOWN_GRACE = 2.0


class LocalPlatform:
    """An emulator of the xpander.ai platform's HTTP API with scripted built-in agents.

    Use as `async with LocalPlatform() as platform: ... platform.url ...` or call `start()` / `stop()`.
    `api_keys` empty accepts any (or no) `x-api-key`; `step_delay` is the demo agents' default delay per step.
    """

    def __init__(
        self,
        *,
        organization_id: str = "local-org",
        api_keys: Sequence[str] = (),
        keepalive_interval: float = 15.0,
        step_delay: float = 0.05,
        max_finished_tasks: int = 10_000,
    ) -> None:
        if not organization_id or "/" in organization_id:
            raise ValueError("organization_id must be a non-empty path segment")
        if isinstance(api_keys, str):
            raise TypeError("api_keys must be a sequence of keys, not one string")
        if keepalive_interval <= 0:
            raise ValueError("keepalive_interval must be positive")
        if step_delay < 0:
            raise ValueError("step_delay must not be negative")
        if max_finished_tasks < 1:
            raise ValueError("max_finished_tasks must be at least 1")
        self._organization_id = organization_id
        self._api_keys = frozenset(api_keys)
        self._keepalive_interval = keepalive_interval
        self._step_delay = step_delay
        self._max_finished_tasks = max_finished_tasks
        self._state: PlatformState | None = None
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """Base URL of the running platform, e.g. `http://127.0.0.1:43121` (no trailing slash)."""
        if self._url is None:
            raise RuntimeError("the local platform is not running")
        return self._url

    @property
    def organization_id(self) -> str:
        """The organization every task and event belongs to."""
        return self._organization_id

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on `host:port` and return once connections are accepted."""
        if self._runner is not None:
            raise RuntimeError("the local platform is already running")
        state = PlatformState.build(
            organization_id=self._organization_id,
            api_keys=self._api_keys,
            keepalive_interval=self._keepalive_interval,
            step_delay=self._step_delay,
            max_finished_tasks=self._max_finished_tasks,
        )
        # handler_cancellation: a client that hangs up ends its event stream at once, so the count of open
        # streams in /_local/stats is exact (otherwise it would only notice at the next keep-alive write).
        runner = web.AppRunner(
            build_app(state), access_log=None, handler_cancellation=True, shutdown_timeout=_SHUTDOWN_GRACE
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        bound_host, bound_port = runner.addresses[0][:2]
        shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        self._state, self._runner = state, runner
        self._url = f"http://{shown_host}:{bound_port}"

    async def stop(self) -> None:
        """Stop scripted runs, end open event streams, close the listener. Safe to call twice."""
        state, runner = self._state, self._runner
        if state is None or runner is None:
            return
        self._state = self._runner = None
        self._url = None
        state.closing = True
        state.lifecycle.shutdown()
        for record in state.store:
            record.log.wake()  # readers waiting for events see `closing` and end their streams
        await runner.cleanup()

    async def __aenter__(self) -> LocalPlatform:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

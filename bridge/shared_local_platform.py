"""The embedded local platform in a process of its own, shared by the workers of `serve --workers N`.

Each worker has its own memory, so a local platform inside each would give every worker different tasks: a
task created through one worker could not be read or streamed through another. One platform in a child of the
parent, started before the workers are forked, gives them all the same tasks, as a real platform would.

The child is forked like the workers (before any gRPC object exists), reports its URL over a pipe, ignores
SIGINT (a terminal's Ctrl-C reaches the whole process group, and the workers still need the platform while
they drain), stops on SIGTERM, and stops by itself if its parent disappears.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType

__all__ = ["SharedLocalPlatform"]

_log = logging.getLogger("bridge.server")
_PARENT_CHECK_SECONDS = 1.0


class SharedLocalPlatform:
    """`with SharedLocalPlatform() as platform:` a local platform process at `platform.url` for the block."""

    def __init__(
        self, *, use_uvloop: bool = True, start_timeout: float = 15.0, stop_timeout: float = 10.0
    ) -> None:
        self._use_uvloop = use_uvloop
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._process: BaseProcess | None = None
        self.url = ""
        """The platform's base URL, e.g. `http://127.0.0.1:41231`."""
        self.organization_id = ""
        """The organization of every task on it."""

    def __enter__(self) -> SharedLocalPlatform:
        context = multiprocessing.get_context("fork")
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_platform_main,
            args=(sender, os.getpid(), self._use_uvloop),
            name="bridge-local-platform",
        )
        process.start()
        self._process = process
        sender.close()
        try:
            if not receiver.poll(self._start_timeout):
                raise RuntimeError(f"the local platform did not start within {self._start_timeout:.0f}s")
            self.url, self.organization_id = receiver.recv()
        except (EOFError, RuntimeError) as error:
            self._stop()
            raise RuntimeError(
                f"the local platform process failed to start: {error or 'it exited'}"
            ) from None
        finally:
            receiver.close()
        _log.info("local platform ready at %s, shared by the workers", self.url, extra={"pid": process.pid})
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.is_alive():
            process.terminate()
            process.join(self._stop_timeout)
        if process.is_alive():
            _log.warning("the local platform (pid %s) did not stop; killing it", process.pid)
            process.kill()
        process.join()


def _platform_main(sender: Connection, parent_pid: int, use_uvloop: bool) -> None:
    from bridge.ops.eventloop import run

    # The parent's handlers came along with the fork; this process installs its own on its loop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    run(_serve(sender, parent_pid), use_uvloop=use_uvloop)


async def _serve(sender: Connection, parent_pid: int) -> None:
    from bridge.localplatform import LocalPlatform

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with LocalPlatform() as platform:
        sender.send((platform.url, platform.organization_id))
        sender.close()
        while not stop.is_set():
            if os.getppid() != parent_pid:
                _log.warning("the bridge that started this local platform is gone; stopping")
                return
            try:
                async with asyncio.timeout(_PARENT_CHECK_SECONDS):
                    await stop.wait()
            except TimeoutError:
                pass

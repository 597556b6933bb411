"""`xpander-bridge serve` as a child process: started with flags and environment, its log read as it comes.

`ServeProcess` drains the child's stderr in the background (a DEBUG log would otherwise fill the pipe and
stall the bridge), keeps every line, and waits for the JSON ready lines (`--log-format json`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

__all__ = ["BIN", "ROOT", "ServeProcess", "alive", "environment", "run_serve", "serve_process"]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
_READY = "xpander-bridge ready on "
_LINE_LIMIT = 1 << 20


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without any bridge or platform setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XPANDER_", "BRIDGE_"))}
    return {**env, **extra}


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie has ended all the same)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


class ServeProcess:
    """A running `serve` child and every line it has logged so far."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.lines.append(line.decode())
            self._changed.set()
        self._changed.set()

    def records(self) -> list[dict[str, Any]]:
        """The lines that are JSON log records, parsed."""
        found = []
        for line in self.lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                found.append(record)
        return found

    async def ready(self, count: int = 1, within: float = 30.0) -> list[dict[str, Any]]:
        """The first `count` ready records (one per worker), once they are logged."""
        async with asyncio.timeout(within):
            while True:
                found = [r for r in self.records() if str(r.get("message", "")).startswith(_READY)]
                if len(found) >= count:
                    return found[:count]
                if self._reader.done():
                    raise AssertionError("serve exited before it was ready:\n" + "".join(self.lines))
                self._changed.clear()
                await self._changed.wait()

    async def stop(self, within: float = 20.0) -> int:
        """SIGTERM, then the exit status once the process and its log have ended."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(within):
            status = await self.process.wait()
            await self._reader
        return status


@asynccontextmanager
async def serve_process(*flags: str, env: dict[str, str]) -> AsyncIterator[ServeProcess]:
    """`xpander-bridge serve FLAGS` for the block; killed at the end if it is still running."""
    process = await asyncio.create_subprocess_exec(
        str(BIN / "xpander-bridge"),
        "serve",
        *flags,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=ROOT,
        limit=_LINE_LIMIT,
    )
    served = ServeProcess(process)
    try:
        yield served
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await asyncio.wait({served._reader}, timeout=5)


async def run_serve(*flags: str, env: dict[str, str], within: float = 30.0) -> tuple[int, str]:
    """Run `xpander-bridge serve FLAGS` to its end: (exit status, stderr)."""
    process = await asyncio.create_subprocess_exec(
        str(BIN / "xpander-bridge"), "serve", *flags, stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT
    )
    async with asyncio.timeout(within):
        _, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stderr.decode()

"""Running a coroutine on the chosen event loop: the default asyncio loop or uvloop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

__all__ = ["LOOPS", "LoopKind", "run"]

_T = TypeVar("_T")

LoopKind = Literal["asyncio", "uvloop"]
LOOPS: tuple[LoopKind, ...] = ("asyncio", "uvloop")


def run(coro: Coroutine[Any, Any, _T], loop: LoopKind) -> _T:
    """Run `coro` to completion on a new event loop of kind `loop`."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)

"""The embedded local platform: an emulator of the xpander.ai platform's HTTP API with scripted agents.

`LocalPlatform` runs it in-process (tests, `xpander-bridge serve --local-platform`); `xpander-bridge
local-platform` runs it as a process. See docs/local-platform.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge.localplatform.server import LocalPlatform

__all__ = ["LocalPlatform"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the CLI imports this package to build its parser, which must stay cheap.
    if name == "LocalPlatform":
        from bridge.localplatform.server import LocalPlatform

        return LocalPlatform
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

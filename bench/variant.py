"""`xpander-bridge` with a proposed optimisation applied from outside, to measure it before it is adopted.

Usage: `python -m bench.variant [--unary aiohttp] [--streams aiohttp] [--uvloop] serve --listen ...`

- `--unary aiohttp` / `--streams aiohttp`: the platform client's unary / event-stream pool runs on
  `bridge.platform.transport.AiohttpTransport` (what adopting it with one argument would do).
- `--uvloop`: the server's event loop is uvloop's.

Everything else is the bridge as committed; the arguments after the options go to the `xpander-bridge` CLI.
"""

from __future__ import annotations

import argparse
import sys
import types
from typing import Any

import httpx

__all__ = ["main"]


def _patch_transports(unary: str, streams: str) -> None:
    from bridge.platform import client as client_module
    from bridge.platform.transport import AiohttpTransport

    class _AsyncClient(httpx.AsyncClient):
        def __init__(self, *args: Any, limits: httpx.Limits | None = None, **kwargs: Any) -> None:
            limits = limits or httpx.Limits()
            # The client's event-stream pool keeps no idle connections; its unary pool does.
            is_stream_pool = limits.max_keepalive_connections == 0
            wanted = streams if is_stream_pool else unary
            if wanted == "aiohttp" and kwargs.get("transport") is None:
                kwargs["transport"] = AiohttpTransport(
                    max_connections=limits.max_connections, keepalive_expiry=0.0 if is_stream_pool else 5.0
                )
            super().__init__(*args, limits=limits, **kwargs)

    shim = types.ModuleType("httpx")
    shim.__dict__.update(httpx.__dict__)
    shim.AsyncClient = _AsyncClient  # type: ignore[attr-defined]
    client_module.httpx = shim  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    """Apply the chosen variants, then run the `xpander-bridge` CLI with the remaining arguments."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--unary", choices=("httpx", "aiohttp"), default="httpx")
    parser.add_argument("--streams", choices=("httpx", "aiohttp"), default="httpx")
    parser.add_argument("--uvloop", action="store_true")
    options, rest = parser.parse_known_args(argv)
    if options.unary != "httpx" or options.streams != "httpx":
        _patch_transports(options.unary, options.streams)
    if options.uvloop:
        import asyncio

        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    from bridge.cli import main as cli_main

    return cli_main(rest)


if __name__ == "__main__":
    sys.exit(main())

"""`xpander-bridge local-platform`: serve the local platform until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.localplatform.server import LocalPlatform

__all__ = ["add_arguments", "main", "parse_listen"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the subcommand's flags."""
    parser.add_argument("--listen", default="127.0.0.1:9016", metavar="HOST:PORT", help="address to serve on")
    parser.add_argument("--organization-id", default="local-org", help="the organization of every task")
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        dest="api_keys",
        help="accepted x-api-key (repeatable); without any, every key is accepted",
    )
    parser.add_argument(
        "--keepalive-interval",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="idle time between SSE keep-alives",
    )
    parser.add_argument(
        "--step-delay",
        type=float,
        default=0.05,
        metavar="SECONDS",
        help="default delay per scripted agent step",
    )
    parser.add_argument(
        "--no-uvloop",
        action="store_true",
        help="run on asyncio's own event loop even when uvloop is installed",
    )
    parser.add_argument(
        "--max-finished-tasks",
        type=int,
        default=10_000,
        metavar="N",
        help="finished tasks kept before eviction",
    )


def parse_listen(listen: str) -> tuple[str, int]:
    """Split `HOST:PORT` (IPv6 as `[::1]:9016`) into host and port."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"--listen must be HOST:PORT, got {listen!r}")
    return host.removeprefix("[").removesuffix("]"), int(port)


def main(args: argparse.Namespace) -> int:
    """Run the platform in the foreground; 0 after a clean stop, 2 on bad arguments, 1 if it cannot listen."""
    from bridge.ops.eventloop import run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("bridge.localplatform")
    try:
        host, port = parse_listen(args.listen)
        from bridge.localplatform import LocalPlatform

        platform = LocalPlatform(
            organization_id=args.organization_id,
            api_keys=args.api_keys,
            keepalive_interval=args.keepalive_interval,
            step_delay=args.step_delay,
            max_finished_tasks=args.max_finished_tasks,
        )
    except (TypeError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    try:
        run(_serve(platform, host, port, log), use_uvloop=not args.no_uvloop)
    except OSError as exc:
        log.error("cannot listen on %s: %s", args.listen, exc)
        return 1
    return 0


async def _serve(platform: LocalPlatform, host: str, port: int, log: logging.Logger) -> None:
    import asyncio
    import gc
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await platform.start(host, port)
    # This process holds nothing but the platform, whose task data is acyclic and long-lived: with Python's
    # default thresholds the cyclic collector kept rescanning it (a quarter of the CPU per created task, and
    # pauses of ~100 ms with 10 000 tasks held). Startup objects are frozen out of its sight for good.
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    try:
        log.info("local platform ready at %s (organization %s)", platform.url, platform.organization_id)
        await stop.wait()
        log.info("stopping the local platform")
    finally:
        await platform.stop()

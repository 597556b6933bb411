"""`xpander-bridge serve`: run the gRPC bridge until SIGTERM or SIGINT, then shut down gracefully.

One flag per `Settings` field (`--listen`, `--base-url`, `--local-platform`, ...), each falling back to its
environment variable and then to its default. The API key has no flag (it would show in the process list):
only `XPANDER_API_KEY` sets it.
"""

from __future__ import annotations

import argparse
import logging
from types import UnionType
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

if TYPE_CHECKING:
    from bridge.config import Settings

__all__ = ["READY_MESSAGE", "add_arguments", "main", "settings_from_args"]

READY_MESSAGE = "xpander-bridge ready on %s"
"""Start of the log line written once the server accepts calls (tools wait for it)."""

_log = logging.getLogger("bridge.server")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add a flag per Settings field but secrets; each defaults to unset so the environment applies."""
    from pydantic import SecretStr

    from bridge.config import Settings

    group = parser.add_argument_group("bridge")
    for name, field in Settings.model_fields.items():
        kind: Any = field.annotation
        if get_origin(kind) in (Union, UnionType):
            kind = next(arg for arg in get_args(kind) if arg is not type(None))
        if kind is SecretStr:
            continue
        flag = "--" + name.replace("_", "-")
        help_text = f"{field.description} [env {field.validation_alias}; default {field.default}]".replace(
            "%", "%%"
        )
        if kind is bool:
            group.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        elif kind in (int, float):
            group.add_argument(flag, dest=name, type=kind, default=None, metavar="N", help=help_text)
        else:
            metavar = "HOST:PORT" if name == "listen" else name.split("_")[-1].upper()
            group.add_argument(flag, dest=name, default=None, metavar=metavar, help=help_text)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The Settings for these flags, the environment filling in what the flags leave unset."""
    from bridge.config import Settings

    overrides = {
        name: getattr(args, name) for name in Settings.model_fields if getattr(args, name, None) is not None
    }
    return Settings(**overrides)


def main(args: argparse.Namespace) -> int:
    """Serve until a signal: 0 after a clean stop, 2 on bad settings, 1 when the address cannot be bound."""
    import asyncio

    from pydantic import ValidationError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request at INFO; the bridge logs what matters itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = settings_from_args(args)
    except ValidationError as error:
        # Only locations and messages: input values could be secrets.
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"])
            _log.error("invalid setting %s: %s", where, problem["msg"])
        return 2
    try:
        asyncio.run(_serve(settings))
    except (OSError, RuntimeError) as error:
        _log.error("cannot serve on %s: %s", settings.listen, error)
        return 1
    return 0


async def _serve(settings: Settings) -> None:
    import asyncio
    import signal

    from bridge.server import BridgeServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with BridgeServer(settings) as server:
        effective = server.settings
        local = " (embedded local platform)" if effective.local_platform else ""
        _log.info(
            READY_MESSAGE + ", platform %s%s, events %s",
            server.address,
            effective.base_url,
            local,
            effective.resolved_events_base_url,
        )
        await stop.wait()
        _log.info("shutting down: draining for up to %.1fs", effective.shutdown_grace)
    _log.info("stopped")

"""`xpander-bridge serve`: run the gRPC bridge until SIGTERM or SIGINT, then shut down gracefully.

One flag per `Settings` field (`--listen`, `--base-url`, `--local-platform`, `--metrics-listen`, ...), each
falling back to its environment variable and then to its default. Secrets have no flag (they would show in the
process list): only `XPANDER_API_KEY` sets the API key and `BRIDGE_TOKENS` the inline bridge tokens.

With `--workers N` (N > 1) the parent forks N workers before any gRPC object exists (`bridge.ops.workers`);
each serves the same port. With `--local-platform` as well, the parent first starts one local platform in a
process of its own and points every worker at it, so a task created through one worker can be read and
streamed through any other.
"""

from __future__ import annotations

import argparse
import logging
from types import UnionType
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

if TYPE_CHECKING:
    from bridge.config import Settings
    from bridge.ops.auth import BridgeTokens
    from bridge.ops.workers import Worker

__all__ = ["READY_MESSAGE", "add_arguments", "main", "settings_from_args"]

READY_MESSAGE = "xpander-bridge ready on %s"
"""Start of the log line written once the server accepts calls (tools wait for it)."""

_log = logging.getLogger("bridge.server")
# Exit statuses: bad settings (or a refused exposure), and an address that cannot be served.
_EXIT_SETTINGS = 2
_EXIT_SERVE = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add a flag per Settings field but secrets; each defaults to unset so the environment applies."""
    from pydantic import SecretStr

    from bridge.config import Settings
    from bridge.ops import settings as ops_settings

    group = parser.add_argument_group("bridge")
    for name, field in Settings.model_fields.items():
        if name in ops_settings.OpsSettings.model_fields:
            continue  # the operations group below declares these
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
        elif get_origin(kind) is Literal:
            group.add_argument(flag, dest=name, choices=get_args(kind), default=None, help=help_text)
        else:
            metavar = "HOST:PORT" if name == "listen" else name.split("_")[-1].upper()
            group.add_argument(flag, dest=name, default=None, metavar=metavar, help=help_text)
    ops_settings.add_arguments(parser)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The Settings for these flags, the environment filling in what the flags leave unset."""
    from bridge.config import Settings

    overrides = {
        name: getattr(args, name) for name in Settings.model_fields if getattr(args, name, None) is not None
    }
    return Settings(**overrides)


def main(args: argparse.Namespace) -> int:
    """Serve until a signal: 0 after a clean stop, 2 on bad settings or an unsafe exposure, 1 when the
    address cannot be served."""
    from bridge.ops.auth import UnsafeExposureError, check_exposure
    from bridge.ops.logs import configure_logging
    from bridge.ops.workers import run_workers
    from bridge.redaction import remember

    # Until the settings are read, problems with them are reported on the default console format.
    configure_logging("console", "INFO")
    checked = _checked_settings(args)
    if checked is None:
        return _EXIT_SETTINGS
    settings, tokens = checked
    api_key = settings.api_key.get_secret_value() if settings.api_key is not None else None
    secrets = [secret for secret in (api_key, *tokens.secret_values()) if secret]
    remember(secrets)
    configure_logging(settings.log_format, settings.log_level, secrets=secrets)
    host, port = settings.listen_address
    try:
        # Checked here too, before any worker is forked, so a refusal is said once, not once per worker.
        check_exposure(
            host,
            default_key_configured=api_key is not None,
            tokens=tokens,
            client_cert_required=settings.tls_require_client_cert,
            allow_unauthenticated=settings.allow_unauthenticated,
        )
    except UnsafeExposureError as error:
        _log.error("%s", error)
        return _EXIT_SETTINGS
    try:
        if settings.workers > 1 and settings.local_platform:
            return _serve_workers_on_a_shared_local_platform(settings, host, port)
        return run_workers(
            lambda worker: _run_worker(settings, worker),
            workers=settings.workers,
            host=host,
            port=port,
            stop_timeout=settings.shutdown_grace + 10,
        )
    except (OSError, RuntimeError) as error:
        # The parent's own failures: the port to share could not be reserved, the shared platform not started.
        _log.error("cannot serve on %s: %s", settings.listen, error)
        return _EXIT_SERVE


def _checked_settings(args: argparse.Namespace) -> tuple[Settings, BridgeTokens] | None:
    """The settings and caller tokens, or None after logging why they cannot be served with."""
    from pydantic import ValidationError

    from bridge.credentials import checked_default_key
    from bridge.ops.auth import BridgeTokens

    try:
        settings = settings_from_args(args)
    except ValidationError as error:
        # Only locations and messages: input values could be secrets.
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"]) or "settings"
            _log.error("invalid setting %s: %s", where, problem["msg"])
        return None
    try:
        tokens = BridgeTokens.load(
            settings.bridge_tokens_file,
            settings.bridge_tokens.get_secret_value() if settings.bridge_tokens is not None else None,
        )
    except (OSError, ValueError) as error:
        _log.error("invalid bridge tokens: %s", error)
        return None
    try:
        # The settings strip the key (a key file's trailing newline); one that is still not a key stops here.
        checked_default_key(settings.api_key.get_secret_value() if settings.api_key is not None else None)
    except ValueError as error:
        _log.error("invalid setting: %s", error)
        return None
    return settings, tokens


def _serve_workers_on_a_shared_local_platform(settings: Settings, host: str, port: int) -> int:
    from bridge.ops.workers import run_workers
    from bridge.server import pointed_at_local_platform
    from bridge.shared_local_platform import SharedLocalPlatform

    with SharedLocalPlatform(use_uvloop=settings.uvloop) as platform:
        shared = pointed_at_local_platform(settings, platform.url, platform.organization_id)
        return run_workers(
            lambda worker: _run_worker(shared.model_copy(update={"local_platform": False}), worker, True),
            workers=settings.workers,
            host=host,
            port=port,
            stop_timeout=settings.shutdown_grace + 10,
        )


def _run_worker(settings: Settings, worker: Worker, shared_local_platform: bool = False) -> int:
    """One serving process (or the only one): its own event loop, server and upstream pools."""
    from bridge.ops.auth import UnsafeExposureError
    from bridge.ops.eventloop import run

    _collect_garbage_less_often()
    try:
        run(_serve(settings, worker, shared_local_platform), use_uvloop=settings.uvloop)
    except UnsafeExposureError as error:
        _log.error("%s", error)
        return _EXIT_SETTINGS
    except (OSError, RuntimeError) as error:
        _log.error("cannot serve on %s: %s", worker.address, error)
        return _EXIT_SERVE
    return 0


async def _serve(settings: Settings, worker: Worker, shared_local_platform: bool) -> None:
    import asyncio
    import os
    import signal

    from bridge.server import BridgeServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with BridgeServer(settings, worker) as server:
        _freeze_startup_objects()
        effective = server.settings
        local = " (embedded local platform)" if effective.local_platform or shared_local_platform else ""
        details: dict[str, Any] = {"pid": os.getpid(), "worker": worker.index}
        metrics_port = server.operations.metrics_port
        if metrics_port is not None:
            metrics_host = (effective.metrics_listen or "").rpartition(":")[0]
            details["metrics"] = f"http://{metrics_host}:{metrics_port}/metrics"
        _log.info(
            READY_MESSAGE + ", platform %s%s, events %s",
            server.address,
            effective.base_url,
            local,
            effective.resolved_events_base_url,
            extra=details,
        )
        await stop.wait()
        _log.info("shutting down: draining for up to %.1fs", effective.shutdown_grace)
    _log.info("stopped")


_GC_THRESHOLDS = (20_000, 2, 20)


def _collect_garbage_less_often() -> None:
    """Raise this serving process's young-generation threshold (never lower it); keep the middle one small.

    Thousands of long-lived streams are thousands of live objects that every young-generation collection walks
    again: at 5,000 open streams collection took 17 % of the bridge's CPU while opening more, hence a large
    first threshold. The second stays small: the middle generation then holds the survivors of two young
    collections rather than twenty, and walking it pauses the loop for under 50 ms instead of 400 ms at
    10,000 open streams. The setting is process-wide, so it belongs to the process that serves, not to
    `BridgeServer`, which tests and other programs embed.
    """
    import gc

    if gc.get_threshold()[0] < _GC_THRESHOLDS[0]:
        gc.set_threshold(*_GC_THRESHOLDS)


def _freeze_startup_objects() -> None:
    """Move everything alive once the server has started (modules, classes, descriptors) out of collection.

    Those objects live as long as the process, yet a full collection walks them all: with 10,000 streams
    open one took 0.9 s, stalling every call. Frozen, they are never walked again (objects created later,
    the calls' and streams', are collected as usual).
    """
    import gc

    gc.collect()
    gc.freeze()

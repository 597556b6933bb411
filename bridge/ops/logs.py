"""Structured logs: one line per RPC, a request id per call, and secrets scrubbed from every line.

`configure_logging` puts one handler on the root logger whose formatter renders JSON or key=value text and
redacts it, so whatever any library logs passes through the same scrubbing. Redaction removes the values of
secret-looking keys (`x-api-key`, `authorization`, `user_oidc_token`, `user_tokens`, `api_key`,
`client_secret`, ...), bearer tokens, the configured secrets (default key, bridge tokens) and, while a call is
being served, every secret that call carried in its metadata or request message.

The `AccessLog` stage takes the request id from `x-request-id` metadata (or makes one, see `RequestIds`) and
keeps it in `request_id_var`, where the upstream transport finds it to forward to the platform.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from secrets import token_hex
from typing import Any, TextIO, cast

import grpc

from bridge.ops.auth import caller_var
from bridge.ops.calls import Call, CallStage, MethodStage, OpsInterceptor, is_open_method, metadata_value
from bridge.redaction import REDACTED, Redactor, call_secrets_var, scrub, secrets_of_call

__all__ = [
    "REDACTED",
    "REQUEST_ID_METADATA",
    "AccessLog",
    "AccessLogInterceptor",
    "ConsoleFormatter",
    "GrpcRecordScrubber",
    "JsonFormatter",
    "LoopBatchingHandler",
    "Redactor",
    "RequestIds",
    "call_secrets_var",
    "configure_logging",
    "current_request_id",
    "request_id_var",
    "scrub_grpc_logs",
]

REQUEST_ID_METADATA = "x-request-id"

request_id_var: ContextVar[str | None] = ContextVar("bridge_request_id", default=None)
"""The request id of the call being served (None outside calls)."""

_ACCESS_LOGGER = logging.getLogger("bridge.access")

# A caller's request id is echoed into logs and upstream headers: keep it short and printable.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")

# Attributes every LogRecord has; anything else was passed in `extra=` and is rendered as a field.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES}


def _timestamp(record: logging.LogRecord) -> str:
    return (
        datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, then every `extra` field; values redacted."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        # Scrubbed before serializing: scrubbing JSON text could cut through its escapes.
        redact = self.redactor.redact
        line: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in _fields(record).items():
            plain = value is None or isinstance(value, bool | int | float)
            line[key] = value if plain else redact(str(value))
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """Readable text: time, level, logger and message, then every `extra` field as key=value; redacted."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), record.levelname, record.name, record.getMessage()]
        for key, value in _fields(record).items():
            text = str(value)
            needs_quotes = not text or any(char in text for char in ' "=')
            parts.append(f"{key}={json.dumps(text) if needs_quotes else text}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return self.redactor.redact(line)


def configure_logging(
    log_format: str = "console",
    level: str = "INFO",
    *,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> Redactor:
    """Route all logging through one redacting handler on the root logger; returns its `Redactor`."""
    redactor = Redactor(secrets)
    formatter = JsonFormatter(redactor) if log_format == "json" else ConsoleFormatter(redactor)
    handler = LoopBatchingHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request at INFO; the access line per RPC already says what a call did.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    scrub_grpc_logs()
    return redactor


# grpc's Python loggers; a filter on a logger does not apply to its children, so each is named.
_GRPC_LOGGERS = (
    "grpc",
    "grpc._cython.cygrpc",
    "grpc._server",
    "grpc._common",
    "grpc.aio",
    "grpc.aio._server",
)
# grpc logs a metadata value that is not UTF-8 whole, with a traceback, each time a call's metadata is read.
_INVALID_ENCODING = "Invalid encoding on "


class GrpcRecordScrubber(logging.Filter):
    """Rewrites grpc's own records before any handler sees them: known secrets and undecodable values out.

    An undecodable metadata value may be a key: it is never shown, and the line (the bridge answers the call
    itself) drops to DEBUG without its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(_INVALID_ENCODING):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.exc_info, record.exc_text = None, None
            record.msg, record.args = "a call's metadata holds a value that is not UTF-8 (not shown)", ()
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        record.msg, record.args = scrub(message), ()
        return True


_GRPC_SCRUBBER = GrpcRecordScrubber()


def scrub_grpc_logs() -> None:
    """Put `GrpcRecordScrubber` on grpc's loggers (once; later calls do nothing)."""
    for name in _GRPC_LOGGERS:
        logger = logging.getLogger(name)
        if _GRPC_SCRUBBER not in logger.filters:
            logger.addFilter(_GRPC_SCRUBBER)


class LoopBatchingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler writing the lines of one event-loop turn with one write and one flush.

    Under load an access line per call was a `write` syscall per call, about 5 % of a CreateTask's CPU. Lines
    logged on a thread running an event loop are held until the end of the loop's current turn (a
    `call_soon`), then written together; lines from other threads, and any logged when no loop runs, are
    written at once, after whatever is held, so the order is kept. `flush()` and `close()` write what is held.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._held: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # Called under the handler's lock (logging.Handler.handle).
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        loop = _running_loop()
        if loop is None:
            self._held.append(line)
            self._write_held()
            return
        if not self._held:
            loop.call_soon(self._flush_turn)
        self._held.append(line)

    def _flush_turn(self) -> None:
        self.acquire()
        try:
            self._write_held()
        finally:
            self.release()

    def _write_held(self) -> None:
        if not self._held:
            return
        text = "".join(self._held)
        self._held.clear()
        try:
            self.stream.write(text)
            self.stream.flush()
        except Exception:  # a closed or broken stream must not break the call that logged
            pass

    def flush(self) -> None:
        self.acquire()
        try:
            self._write_held()
        finally:
            self.release()
        super().flush()

    def close(self) -> None:
        self.flush()
        super().close()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running on this thread, if any (no exception when there is none)."""
    return asyncio._get_running_loop()


def current_request_id() -> str | None:
    """The request id of the call being served, for forwarding upstream as `x-request-id`."""
    return request_id_var.get()


class RequestIds:
    """New request ids: a random 64-bit prefix per process, then a 64-bit counter; 32 hex digits in all.

    Unique within a process by the counter and across processes (workers, restarts) by the prefix, which is
    drawn again in a forked child. Cheaper than a random id per call, and as good for correlating log lines
    with platform requests; they are not secrets (the caller may send its own), so being able to guess a
    process's next id is harmless.
    """

    def __init__(self) -> None:
        self._prefix = ""
        self._counter: Iterator[int] = iter(())
        self.reseed()

    def reseed(self) -> None:
        """Draw a new prefix and restart the counter."""
        self._prefix = token_hex(8)
        self._counter = itertools.count(1)

    def new(self) -> str:
        """The next id."""
        return f"{self._prefix}{next(self._counter):016x}"


_REQUEST_IDS = RequestIds()
# A worker forked from the parent must not continue the parent's sequence.
os.register_at_fork(after_in_child=_REQUEST_IDS.reseed)


def request_id_from(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The caller's `x-request-id` when it is short and printable, else a new id (see `RequestIds`)."""
    given = metadata_value(metadata, REQUEST_ID_METADATA)
    if given is not None and _SAFE_REQUEST_ID.fullmatch(given):
        return given
    return _REQUEST_IDS.new()


def _ids(request: Any, response: Any = None) -> dict[str, str]:
    ids: dict[str, str] = {}
    for name in ("task_id", "agent_id"):
        value = getattr(request, name, None)
        if isinstance(value, str) and value:
            ids[name] = value
    task_id = getattr(getattr(response, "task", None), "id", None)
    if "task_id" not in ids and isinstance(task_id, str) and task_id:
        ids["task_id"] = task_id
    return ids


_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
)


@dataclass(frozen=True, slots=True)
class _Logged:
    request_id: str
    peer: str


class AccessLog(CallStage):
    """Sets the call's request id and secrets, and logs one line per RPC when it ends.

    The line (logger `bridge.access`, message `rpc`) carries `method`, `code`, `duration_ms`, `request_id`,
    `peer`, `caller` (when caller auth runs) and, when the request or response names them, `task_id` and
    `agent_id`; a stream's line also counts its `messages`. Health and reflection calls are not logged:
    probes would drown everything else.
    """

    def bind(self, method: str, *, streaming: bool) -> MethodStage | None:
        return None if is_open_method(method) else _LoggedMethod(streaming=streaming)


class _LoggedMethod(MethodStage):
    __slots__ = ("_streaming",)

    def __init__(self, *, streaming: bool) -> None:
        self._streaming = streaming

    def enter(self, call: Call) -> _Logged:
        request_id = request_id_from(call.metadata)
        request_id_var.set(request_id)
        call_secrets_var.set(secrets_of_call(call.caller, call.request))
        # Read while the call is surely alive: a stream may be closed after its call is gone.
        return _Logged(request_id, call.context.peer())

    def exit(self, call: Call, state: object, code: grpc.StatusCode) -> None:
        logged = cast(_Logged, state)
        fields: dict[str, Any] = {
            "method": call.method,
            "code": code.name,
            "duration_ms": round((time.perf_counter() - call.started) * 1000, 1),
            "request_id": logged.request_id,
            "peer": logged.peer,
            **_ids(call.request, call.response),
        }
        caller = caller_var.get()
        if caller is not None:
            fields["caller"] = caller
        if self._streaming:
            fields["messages"] = call.sent
        level = logging.WARNING if code in _SERVER_FAULTS else logging.INFO
        _ACCESS_LOGGER.log(level, "rpc", extra=fields)


class AccessLogInterceptor(OpsInterceptor):
    """An interceptor running `AccessLog` alone (`Operations` runs it with the other stages)."""

    def __init__(self) -> None:
        super().__init__([AccessLog()])

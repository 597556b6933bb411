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
from google.protobuf import struct_pb2
from google.protobuf.message import Message

from bridge.ops.auth import caller_var
from bridge.ops.calls import Call, CallStage, MethodStage, OpsInterceptor, is_open_method, metadata_value

__all__ = [
    "REDACTED",
    "REQUEST_ID_METADATA",
    "AccessLog",
    "AccessLogInterceptor",
    "ConsoleFormatter",
    "JsonFormatter",
    "LoopBatchingHandler",
    "Redactor",
    "RequestIds",
    "call_secrets_var",
    "configure_logging",
    "current_request_id",
    "request_id_var",
]

REDACTED = "[REDACTED]"
REQUEST_ID_METADATA = "x-request-id"

request_id_var: ContextVar[str | None] = ContextVar("bridge_request_id", default=None)
"""The request id of the call being served (None outside calls)."""

call_secrets_var: ContextVar[frozenset[str]] = ContextVar("bridge_call_secrets", default=frozenset())
"""Secrets carried by the call being served, scrubbed from any line logged while it runs."""

_ACCESS_LOGGER = logging.getLogger("bridge.access")

# Request metadata and message fields whose values are secrets.
_SECRET_METADATA = ("x-api-key", "authorization", "x-bridge-token")
_SECRET_FIELDS = frozenset({"user_oidc_token", "user_tokens", "api_key", "client_secret", "headers"})
# Shorter values would scrub ordinary words out of lines; keys that short are refused elsewhere anyway.
_MIN_SECRET_CHARS = 6
# A caller's request id is echoed into logs and upstream headers: keep it short and printable.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")

# A key starts where a run of word characters, dots and dashes does (the lookbehind): a match found from
# inside a run is found from its start too, and trying every position inside long runs (ids, method names)
# costs hundreds of microseconds a line.
_SECRET_KEY = re.compile(
    r"""(?ix)
    (?<![\w.-])
    (?P<key>[\w.-]*(?:api[_-]?key|authorization|bridge[_-]tokens?|oidc[_-]token|user[_-]tokens
        |client[_-]secret|access[_-]token|refresh[_-]token|id[_-]token|password|secret))
    (?P<quote>["']?)
    (?P<sep>\s*[:=]\s*|\s*,\s*|\s*(?=\{))
    """
)
_QUOTED_OR_BARE_VALUE = re.compile(
    r"""(?ix)
    "(?:[^"\\]|\\.)*" | '(?:[^'\\]|\\.)*' | (?:bearer|basic)\s+[^\s"',;}\]]+ | [^\s"',;&}\])]+
    """
)
_BEARER = re.compile(r"(?i)\b(bearer)\s+(?!\[REDACTED\])[A-Za-z0-9._~+/=-]+")


class Redactor:
    """Scrubs secrets out of text: known values, values of secret-looking keys and bearer tokens."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add_secret(secret)

    def add_secret(self, secret: str) -> None:
        """Scrub `secret` wherever it appears from now on (values shorter than 6 characters are ignored)."""
        if len(secret) >= _MIN_SECRET_CHARS:
            self._secrets.add(secret)

    def redact(self, text: str) -> str:
        """`text` with every secret replaced by `[REDACTED]`."""
        # Longest first, so a secret that contains another is scrubbed whole.
        for secret in sorted(self._secrets | call_secrets_var.get(), key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, REDACTED)
        # Both patterns cost tens of microseconds to search for; most lines contain none of the words a match
        # needs, and then cannot match. Only ASCII text is prefiltered: case-insensitive patterns also match
        # non-ASCII look-alikes (e.g. U+017F for s) that lower() keeps.
        lowered = text.lower() if text.isascii() else None
        if lowered is None or any(word in lowered for word in _SECRET_KEY_WORDS):
            text = _redact_key_values(text)
        if lowered is None or "bearer" in lowered:
            text = _BEARER.sub(rf"\1 {REDACTED}", text)
        return text


# Every `_SECRET_KEY` match contains one of these, in any case: its key alternatives are api[_-]?key,
# authorization, ...[_-]token(s), ...secret and password. (Not bare `key` or `token`: an access line's
# `caller=platform-key` or `caller=token:ci` would then pay for a search that cannot match.)
_SECRET_KEY_WORDS = (
    "apikey",
    "api_key",
    "api-key",
    "authorization",
    "_token",
    "-token",
    "password",
    "secret",
)


def _redact_key_values(text: str) -> str:
    out: list[str] = []
    position = 0
    while match := _SECRET_KEY.search(text, position):
        out.append(text[position : match.end()])
        position = match.end()
        sep = match.group("sep")
        if position < len(text) and text[position] == "{":
            end = _closing_brace(text, position)
            out.append("{" + REDACTED + "}")
            position = end
        elif sep.strip() == "," and not match.group("quote"):
            continue  # `password, ...` in prose, not a key and its value
        elif sep.strip() and (value := _QUOTED_OR_BARE_VALUE.match(text, position)):
            quote = value.group()[0] if value.group()[0] in "\"'" else ""
            out.append(f"{quote}{REDACTED}{quote}")
            position = value.end()
    out.append(text[position:])
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    """The index after the brace closing the one at `start` (or the end of `text`), skipping quoted braces."""
    depth = 0
    quote = ""
    index = start
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return len(text)


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
    return redactor


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


def secrets_of_call(metadata: Iterable[tuple[str, str | bytes]] | None, request: Any) -> frozenset[str]:
    """Every secret value a call carries: credential metadata and secret fields of its request message."""
    found: set[str] = set()
    for key, value in metadata or ():
        if key in _SECRET_METADATA and isinstance(value, str) and value.strip():
            found.add(value.strip())
            scheme, _, token = value.strip().partition(" ")
            if token.strip() and scheme.lower() == "bearer":
                found.add(token.strip())
    if isinstance(request, Message):
        _collect_secret_fields(request, found, inside_secret=False, depth=0)
    return frozenset(secret for secret in found if len(secret) >= _MIN_SECRET_CHARS)


def _collect_secret_fields(message: Message, found: set[str], *, inside_secret: bool, depth: int) -> None:
    if depth > 8:
        return
    for field, value in message.ListFields():
        kind = _kind_of(field)
        secret = inside_secret or kind.secret
        if not secret and not kind.may_hold_secrets:
            continue  # a plain value, or messages without a secret field anywhere inside
        values = value.values() if kind.is_map else value if kind.is_repeated else [value]
        for item in values:
            if isinstance(item, str):
                if secret:
                    found.add(item)
            elif isinstance(item, struct_pb2.Struct | struct_pb2.Value | struct_pb2.ListValue | Message):
                _collect_secret_fields(item, found, inside_secret=secret, depth=depth + 1)


@dataclass(frozen=True, slots=True)
class _FieldKind:
    secret: bool
    """Named like a secret: every string inside is one."""
    may_hold_secrets: bool
    """Of a message type with a secret-named field somewhere inside."""
    is_map: bool
    is_repeated: bool


# Per field descriptor, what the walk needs to know about it: looking it up again costs more than the walk.
_FIELD_KINDS: dict[Any, _FieldKind] = {}
_HOLDS_SECRETS: dict[Any, bool] = {}


def _kind_of(field: Any) -> _FieldKind:
    kind = _FIELD_KINDS.get(field)
    if kind is None:
        message_type = field.message_type
        kind = _FieldKind(
            secret=field.name in _SECRET_FIELDS,
            may_hold_secrets=message_type is not None and _holds_secrets(message_type),
            is_map=bool(message_type is not None and message_type.GetOptions().map_entry),
            is_repeated=bool(field.is_repeated),
        )
        _FIELD_KINDS[field] = kind
    return kind


def _holds_secrets(descriptor: Any) -> bool:
    """Whether a message of type `descriptor` can have a secret-named field at any depth."""
    known = _HOLDS_SECRETS.get(descriptor)
    if known is None:
        seen = {descriptor}
        pending = [descriptor]
        known = False
        while pending and not known:
            for field in pending.pop().fields:
                if field.name in _SECRET_FIELDS:
                    known = True
                    break
                inner = field.message_type
                if inner is not None and inner not in seen:
                    seen.add(inner)
                    pending.append(inner)
        _HOLDS_SECRETS[descriptor] = known
    return known


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
        call_secrets_var.set(secrets_of_call(call.metadata, call.request))
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

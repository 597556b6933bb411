"""What every ops stage needs: one interceptor running the stages around each call, metadata and outcomes.

The operational concerns of a call (access log, span, metrics, caller auth, limits) are `CallStage`s. One
`OpsInterceptor` runs them in order around the behaviour of every method: each stage is bound to a method
once (`CallStage.bind`, where it can prepare per-method state such as metric children), and the method's
handler is wrapped once and cached, so a call costs one extra coroutine (or async generator) layer whatever
the number of stages. Per-call data (request, context, invocation metadata) reaches the stages as a `Call`.

A stage's `enter` runs before the behaviour and may refuse the call by raising a `BridgeError` (the call then
ends with that error's rich status); `exit` runs for every entered stage, innermost first, once the call has
ended, with its status code; `message` sees every streamed response. Health and reflection
(`is_open_method`) are left alone by the stages that say so in `bind`; client-streaming methods that are open
(server reflection) pass through untouched.

The request deserializer of every method with a single request is wrapped too: a body it cannot decode
becomes an `Undecodable` marker, and the call ends INVALID_ARGUMENT (reason `INVALID_REQUEST_BODY`) once the
stages are entered, with at most one WARNING line per method and cause a minute (grpc itself would end it
UNKNOWN and log a traceback per call).

A stream wrapper iterates the behaviour inside `contextlib.aclosing`, so closing the wrapper's generator
closes the servicer's at once, down to its upstream connection. grpc.aio does not close a stream generator
whose call was cancelled while a message was being written: asyncio's finalizer closes it later, when the
call (and maybe the server) is gone, so code run on that path must not touch the call's context (see
`call_code`); `exit` hooks therefore only use what `enter` read while the call was alive.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, TypeAlias, cast

import grpc
from grpc_status import rpc_status

from bridge.credentials import CallerMetadata, caller_metadata
from bridge.errors import BridgeError, InvalidArgument

__all__ = [
    "OPEN_METHOD_PREFIXES",
    "UNDECODABLE_LOG_INTERVAL",
    "Call",
    "CallStage",
    "Context",
    "Handler",
    "Metadata",
    "MethodStage",
    "OpsInterceptor",
    "Undecodable",
    "abort",
    "call_code",
    "is_open_method",
    "metadata_value",
    "split_method",
]

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Metadata: TypeAlias = "Collection[tuple[str, str | bytes]]"

_log = logging.getLogger(__name__)

UNDECODABLE_LOG_INTERVAL = 60.0
"""Seconds between two WARNING lines about undecodable request bodies of one method and cause."""
_MAX_CAUSE_CHARS = 200

OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
"""Methods that stay open to probes and tools: no caller auth, never shed, no access log line."""


def is_open_method(method: str) -> bool:
    """Whether `method` (e.g. `/grpc.health.v1.Health/Check`) is a health or reflection method."""
    return method.startswith(OPEN_METHOD_PREFIXES)


def split_method(method: str) -> tuple[str, str]:
    """`/pkg.Service/Method` as (`pkg.Service`, `Method`)."""
    service, _, name = method.lstrip("/").rpartition("/")
    return service, name


def metadata_value(metadata: Iterable[tuple[str, str | bytes]] | None, key: str) -> str | None:
    """The first text value of metadata `key` (lower case), stripped; None when absent or blank."""
    for name, value in metadata or ():
        if name == key and isinstance(value, str) and value.strip():
            return value.strip()
    return None


def call_code(context: Context, error: BaseException | None) -> grpc.StatusCode:
    """The status a call ended with, given the exception that ended its behaviour (None when it returned)."""
    if isinstance(error, GeneratorExit):
        # Closed from outside after its call ended: the context may point at a call the core has freed
        # (reading its peer then crashes the process), and the caller stopped listening: CANCELLED.
        return grpc.StatusCode.CANCELLED
    if isinstance(error, asyncio.CancelledError):
        remaining = context.time_remaining()
        expired = remaining is not None and remaining <= 0
        return grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    return grpc.StatusCode.OK if error is None else grpc.StatusCode.UNKNOWN


async def abort(context: Context, error: BridgeError) -> None:
    """End the call with `error`'s rich status (code, message and google.rpc details in the trailers)."""
    status = rpc_status.to_status(error.to_rpc_status())
    await context.abort(status.code, status.details, status.trailing_metadata)


@dataclass(slots=True)
class Call:
    """One call as the stages see it; `response` and `sent` fill in as it runs."""

    method: str
    context: Context
    request: Any
    """The request message (of a client-streaming method: its request iterator)."""
    metadata: Metadata
    started: float
    """`time.perf_counter()` when the wrapper began."""
    response: Any = None
    """The unary response, once the behaviour returned one."""
    sent: int = 0
    """Messages streamed so far."""

    @property
    def caller(self) -> CallerMetadata:
        """The call's credential metadata, parsed once for every stage and the servicer."""
        return caller_metadata(self.context, self.metadata)


class MethodStage:
    """A stage bound to one method; the defaults do nothing."""

    __slots__ = ()

    def enter(self, call: Call) -> object:
        """Before the behaviour: raise a `BridgeError` to refuse the call; the result is passed to `exit`."""
        return None

    def exit(self, call: Call, state: object, code: grpc.StatusCode) -> None:
        """After the call ended with `code` (only when `enter` returned); must not touch `call.context`."""

    def message(self, message: Any) -> None:
        """One streamed response, before it is written."""


class CallStage:
    """One operational concern of every call; `bind` prepares it for one method."""

    __slots__ = ()

    def bind(self, method: str, *, streaming: bool) -> MethodStage | None:
        """This stage for `method` (server-streaming when `streaming`), or None to leave its calls alone."""
        raise NotImplementedError


_MAKERS = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}
_BEHAVIORS = {
    (False, False): "unary_unary",
    (False, True): "unary_stream",
    (True, False): "stream_unary",
    (True, True): "stream_stream",
}


class OpsInterceptor(grpc.aio.ServerInterceptor):
    """Runs `stages`, in order, around every call; each method's handler is wrapped once and kept."""

    def __init__(self, stages: Sequence[CallStage]) -> None:
        self._stages = tuple(stages)
        # method -> (the handler found for it, its wrapped form); the handler is checked on every call, so
        # one that changes is wrapped again. Only methods that have a handler get here: the names of unknown
        # ones come from callers and would grow the cache.
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}
        self._undecodable = _Throttle(UNDECODABLE_LOG_INTERVAL)

    @property
    def stages(self) -> tuple[CallStage, ...]:
        """The stages, outermost first."""
        return self._stages

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, method: str, handler: Handler) -> Handler:
        if handler.request_streaming and is_open_method(method):
            return handler
        shape = (handler.request_streaming, handler.response_streaming)
        streaming = handler.response_streaming
        bound = [stage.bind(method, streaming=streaming) for stage in self._stages]
        stages = tuple(stage for stage in bound if stage is not None)
        deserializer = handler.request_deserializer
        if not handler.request_streaming and deserializer is not None:
            deserializer = _tolerant(deserializer)
        elif not stages:
            return handler
        # The stubs type behaviours as synchronous; under grpc.aio they are coroutines or async generators.
        behavior = cast(Callable[[Any, Context], Any], getattr(handler, _BEHAVIORS[shape]))
        wrapped: Callable[[Any, Context], Any]
        if streaming:
            observers = tuple(s.message for s in stages if type(s).message is not MethodStage.message)
            wrapped = _streaming(method, stages, observers, behavior, self._undecodable)
        else:
            wrapped = _unary(method, stages, behavior, self._undecodable)
        return _MAKERS[shape](
            wrapped, request_deserializer=deserializer, response_serializer=handler.response_serializer
        )


def _metadata_of(context: Context) -> Metadata:
    # grpc.aio types it as its `Metadata` class; a server hands over a tuple of (key, value) pairs.
    return cast(Metadata, context.invocation_metadata() or ())


@dataclass(frozen=True, slots=True)
class Undecodable:
    """What a wrapped request deserializer yields for a body it cannot decode, instead of raising."""

    error: Exception


def _tolerant(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    # A deserializer that raises makes grpc end the call UNKNOWN and log a traceback: one ERROR per bad call.
    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as error:
            return Undecodable(error)

    return decode


class _Throttle:
    """At most one line per cause every `interval` seconds; counts what it held back."""

    __slots__ = ("_interval", "_next", "_skipped")

    def __init__(self, interval: float) -> None:
        self._interval = interval
        # Causes are (method, exception type): methods with a handler only, so the keys are bounded.
        self._next: dict[tuple[str, str], float] = {}
        self._skipped: dict[tuple[str, str], int] = {}

    def allow(self, cause: tuple[str, str]) -> int | None:
        """None to stay quiet, else how many lines of `cause` were held back since its last one."""
        now = time.monotonic()
        if now < self._next.get(cause, 0.0):
            self._skipped[cause] = self._skipped.get(cause, 0) + 1
            return None
        self._next[cause] = now + self._interval
        return self._skipped.pop(cause, 0)


async def _refuse_undecodable(method: str, request: Undecodable, context: Context, log: _Throttle) -> None:
    """End the call INVALID_ARGUMENT; say so in a WARNING line at most once a minute per cause."""
    kind = type(request.error).__name__
    held_back = log.allow((method, kind))
    if held_back is not None:
        _log.warning(
            "undecodable request body on %s: %s: %s (%d more since the last such line)",
            method,
            kind,
            str(request.error)[:_MAX_CAUSE_CHARS],
            held_back,
        )
    refusal = InvalidArgument(
        f"the request body of {method} cannot be decoded as its request message",
        reason="INVALID_REQUEST_BODY",
        metadata={"method": method},
    )
    await abort(context, refusal)


def _unary(
    method: str,
    stages: tuple[MethodStage, ...],
    behavior: Callable[[Any, Context], Awaitable[Any]],
    log: _Throttle,
) -> Callable[[Any, Context], Awaitable[Any]]:
    async def wrapped(request: Any, context: Context) -> Any:
        call = Call(method, context, request, _metadata_of(context), time.perf_counter())
        states: list[object] = []
        error: BaseException | None = None
        try:
            await _enter(stages, states, call)
            if isinstance(request, Undecodable):
                await _refuse_undecodable(method, request, context, log)
            call.response = await behavior(request, context)
            return call.response
        except BaseException as exc:
            error = exc
            raise
        finally:
            _exit(stages, states, call, call_code(context, error))

    return wrapped


def _streaming(
    method: str,
    stages: tuple[MethodStage, ...],
    observers: tuple[Callable[[Any], None], ...],
    behavior: Callable[[Any, Context], Any],
    log: _Throttle,
) -> Callable[[Any, Context], AsyncGenerator[Any, None]]:
    async def wrapped(request: Any, context: Context) -> AsyncGenerator[Any, None]:
        call = Call(method, context, request, _metadata_of(context), time.perf_counter())
        states: list[object] = []
        error: BaseException | None = None
        try:
            await _enter(stages, states, call)
            if isinstance(request, Undecodable):
                await _refuse_undecodable(method, request, context, log)
            # A server-streaming behaviour either yields its messages or writes them with `context.write`.
            result = behavior(request, context)
            if inspect.isawaitable(result):
                await result
                return
            async with aclosing(result) as messages:
                async for message in messages:
                    call.sent += 1
                    for observe in observers:
                        observe(message)
                    yield message
        except BaseException as exc:
            error = exc
            raise
        finally:
            _exit(stages, states, call, call_code(context, error))

    return wrapped


async def _enter(stages: tuple[MethodStage, ...], states: list[object], call: Call) -> None:
    """Enter the stages in order, keeping each one's state in `states`; a refusal ends the call with it."""
    try:
        for stage in stages:
            states.append(stage.enter(call))
    except BridgeError as refusal:
        await abort(call.context, refusal)


def _exit(stages: tuple[MethodStage, ...], states: list[object], call: Call, code: grpc.StatusCode) -> None:
    # Innermost first, and only the stages that were entered.
    for index in range(len(states) - 1, -1, -1):
        stages[index].exit(call, states[index], code)

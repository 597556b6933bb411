"""What every ops interceptor needs: wrapping a method handler, reading metadata, and a call's outcome.

Interceptors wrap the handler's behaviour rather than the call, so they see the request message, the context
and the end of the call (its status code). Only calls with one request message (unary and server streaming)
are wrapped; client-streaming methods (server reflection) pass through untouched.

A stream wrapper iterates the behaviour it wraps inside `contextlib.aclosing`, so closing the outermost
generator closes every one beneath it at once, down to the servicer's upstream connection. grpc.aio does not
close a stream generator whose call was cancelled while a message was being written: asyncio's finalizer
closes it later, when the call (and maybe the server) is gone, so code run on that path must not touch the
call's context (see `call_code`).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from contextlib import aclosing
from typing import Any, TypeAlias, cast

import grpc
from grpc_status import rpc_status

from bridge.errors import BridgeError

__all__ = [
    "OPEN_METHOD_PREFIXES",
    "Context",
    "Handler",
    "StreamBehavior",
    "UnaryBehavior",
    "abort",
    "call_code",
    "is_open_method",
    "metadata_value",
    "split_method",
    "wrap_handler",
]

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
UnaryBehavior: TypeAlias = Callable[[Any, Context], Awaitable[Any]]
StreamBehavior: TypeAlias = Callable[[Any, Context], AsyncGenerator[Any, None]]
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"

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


async def _stream_of(
    behavior: Callable[[Any, Context], Any], request: Any, context: Context
) -> AsyncGenerator[Any, None]:
    # A server-streaming behaviour either yields its messages or writes them with `context.write` and returns.
    result = behavior(request, context)
    if inspect.isawaitable(result):
        await result
        return
    async with aclosing(result) as messages:
        async for message in messages:
            yield message


def wrap_handler(
    handler: Handler | None,
    *,
    unary: Callable[[UnaryBehavior], UnaryBehavior] | None = None,
    stream: Callable[[StreamBehavior], StreamBehavior] | None = None,
) -> Handler | None:
    """`handler` with its unary (server-streaming) behaviour replaced by `unary(b)` (`stream(b)`)."""
    if handler is None or handler.request_streaming:
        return handler
    if not handler.response_streaming:
        if unary is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            unary(cast(UnaryBehavior, handler.unary_unary)),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if stream is None:
        return handler
    # The stubs type behaviours as synchronous; under grpc.aio they are coroutines or async generators.
    inner = cast(Callable[[Any, Context], Any], handler.unary_stream)

    def as_stream(request: Any, context: Context) -> AsyncGenerator[Any, None]:
        return _stream_of(inner, request, context)

    return grpc.unary_stream_rpc_method_handler(
        stream(as_stream),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )

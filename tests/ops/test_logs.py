"""Logs: one structured line per RPC with its ids, request ids forwarded upstream, and no secret anywhere."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2

from bridge.ops.auth import AuthInterceptor, BridgeTokens
from bridge.ops.logs import (
    REDACTED,
    AccessLogInterceptor,
    LoopBatchingHandler,
    Redactor,
    RequestIds,
    configure_logging,
)
from bridge.ops.upstream import upstream_transport
from bridge.redaction import secrets_of_call
from tests.ops.support import FixedTaskService, start_server, start_upstream, stub
from xpander.bridge.v1 import task_pb2, task_service_pb2

DEFAULT_KEY = "xpk-default-0123456789abcdef"
CALLER_KEY = "xpk-caller-fedcba9876543210"
BRIDGE_TOKEN = "bridge-token-aaaabbbbccccdddd"
OIDC_TOKEN = "eyJhbGciOiJSUzI1NiJ9.oidc-payload.signature"
USER_TOKEN = "ghp_usertoken_1234567890"
MCP_KEY = "mcp-api-key-0987654321"
MCP_SECRET = "mcp-client-secret-abcdef"
SECRETS = (DEFAULT_KEY, CALLER_KEY, BRIDGE_TOKEN, OIDC_TOKEN, USER_TOKEN, MCP_KEY, MCP_SECRET)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Route all logging, JSON formatted, into a buffer; restore the root logger afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    configure_logging("json", "INFO", secrets=[DEFAULT_KEY, BRIDGE_TOKEN], stream=buffer)
    try:
        yield buffer
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]


def access_lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [line for line in lines(buffer) if line["logger"] == "bridge.access"]


def secret_request() -> task_service_pb2.CreateTaskRequest:
    user_tokens = struct_pb2.Struct()
    user_tokens.update({"github": USER_TOKEN})
    return task_service_pb2.CreateTaskRequest(
        agent_id="agent-7",
        prompt="hello",
        user_oidc_token=OIDC_TOKEN,
        user_tokens=user_tokens,
        mcp_servers=[task_pb2.MCPServerDetails(api_key=MCP_KEY, client_secret=MCP_SECRET)],
    )


async def test_one_line_per_rpc_with_ids_and_no_secret_in_any_line(captured: io.StringIO) -> None:
    auth = AuthInterceptor(BridgeTokens.parse(f"ci:{BRIDGE_TOKEN}"), default_key_configured=False)
    served = await start_server(interceptors=[AccessLogInterceptor(), auth])
    try:
        async with grpc.aio.insecure_channel(served.address) as channel:
            tasks = stub(channel)
            await tasks.CreateTask(
                secret_request(),
                metadata=(
                    ("x-api-key", CALLER_KEY),
                    ("x-bridge-token", BRIDGE_TOKEN),
                    ("x-request-id", "req-create-1"),
                ),
            )
            await tasks.GetTask(
                task_service_pb2.GetTaskRequest(task_id="t-9"),
                metadata=(("authorization", f"Bearer {CALLER_KEY}"),),
            )
            with pytest.raises(grpc.aio.AioRpcError):
                await tasks.GetTask(task_service_pb2.GetTaskRequest(task_id="missing"))
            events = [
                e async for e in tasks.StreamEvents(task_service_pb2.StreamEventsRequest(task_id="t-3"))
            ]
            assert events
            # Also a stray line from elsewhere that names the default key outright.
            logging.getLogger("somewhere").warning("retrying with key %s", DEFAULT_KEY)
    finally:
        await served.server.stop(None)

    output = captured.getvalue()
    assert "creating task from" in output  # the careless line was logged ...
    for secret in SECRETS:
        assert secret not in output  # ... and every secret in it scrubbed
    assert REDACTED in output

    create, get_ok, get_missing, stream = access_lines(captured)
    assert create["message"] == "rpc"
    assert create["method"] == "/xpander.bridge.v1.TaskService/CreateTask"
    assert create["code"] == "OK"
    assert create["agent_id"] == "agent-7"
    assert create["task_id"] == "task-new"  # from the response
    assert create["request_id"] == "req-create-1"
    assert create["caller"] == "token:ci"
    assert get_ok["caller"] == "platform-key"
    assert isinstance(create["duration_ms"], float)
    assert get_ok["task_id"] == "t-9"
    assert isinstance(get_ok["request_id"], str)
    assert len(get_ok["request_id"]) == 32
    assert get_missing["code"] == "NOT_FOUND"
    assert stream["code"] == "OK"
    assert stream["messages"] == len(events)
    assert stream["task_id"] == "t-3"


async def test_health_checks_are_not_logged(captured: io.StringIO) -> None:
    from grpc_health.v1 import health_pb2

    served = await start_server(interceptors=[AccessLogInterceptor()])
    try:
        async with grpc.aio.insecure_channel(served.address) as channel:
            check = channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )
            await check(health_pb2.HealthCheckRequest())
    finally:
        await served.server.stop(None)
    assert access_lines(captured) == []


async def test_request_id_is_forwarded_upstream(captured: io.StringIO) -> None:
    upstream = await start_upstream()
    async with httpx.AsyncClient(base_url=upstream.url, transport=upstream_transport()) as client:
        served = await start_server(
            interceptors=[AccessLogInterceptor()], service=FixedTaskService(upstream=client)
        )
        try:
            async with grpc.aio.insecure_channel(served.address) as channel:
                await stub(channel).GetTask(
                    task_service_pb2.GetTaskRequest(task_id="upstream"),
                    metadata=(("x-request-id", "req-42"),),
                )
                await stub(channel).GetTask(task_service_pb2.GetTaskRequest(task_id="upstream"))
        finally:
            await served.server.stop(None)
            await upstream.runner.cleanup()
    given, generated = upstream.headers
    assert given["x-request-id"] == "req-42"
    assert generated["x-request-id"] == access_lines(captured)[1]["request_id"]


async def test_unsafe_request_ids_are_replaced(captured: io.StringIO) -> None:
    served = await start_server(interceptors=[AccessLogInterceptor()])
    try:
        async with grpc.aio.insecure_channel(served.address) as channel:
            await stub(channel).GetTask(
                task_service_pb2.GetTaskRequest(task_id="t"),
                metadata=(("x-request-id", "has spaces " + "x" * 200),),
            )
    finally:
        await served.server.stop(None)
    (line,) = access_lines(captured)
    assert isinstance(line["request_id"], str)
    assert len(line["request_id"]) == 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "headers={'x-api-key': 'abc123456', 'x-request-id': 'r1'}",
            "headers={'x-api-key': '[REDACTED]', 'x-request-id': 'r1'}",
        ),
        ("('authorization', 'Bearer tok_abcdef')", "('authorization', '[REDACTED]')"),
        (
            '{"user_oidc_token": "eyJ.x.y", "prompt": "hi"}',
            '{"user_oidc_token": "[REDACTED]", "prompt": "hi"}',
        ),
        (
            'user_tokens {\n fields { key: "gh" value { string_value: "x" } }\n}\ntitle: "t"',
            'user_tokens {[REDACTED]}\ntitle: "t"',
        ),
        ('"user_tokens": {"a": {"b": "c"}}, "n": 1', '"user_tokens": {[REDACTED]}, "n": 1'),
        ("api_key=abcdefgh next=1", "api_key=[REDACTED] next=1"),
        ('client_secret: "s3cr3t!!"', 'client_secret: "[REDACTED]"'),
        ("XPANDER_API_KEY=xyz123456", "XPANDER_API_KEY=[REDACTED]"),
        ("sent Bearer abc.def-ghi to x", "sent Bearer [REDACTED] to x"),
        ("forgot the password, again", "forgot the password, again"),
        ('next_page_token: "p-2"', 'next_page_token: "p-2"'),
        # Case-insensitive matching also takes non-ASCII look-alikes (U+017F is a long s).
        ("pa\u017f\u017fword=hunter22 ok", "pa\u017f\u017fword=[REDACTED] ok"),
        ("sent BEARER abc.def-ghi \u00e9t\u00e9", "sent BEARER [REDACTED] \u00e9t\u00e9"),
        ("rpc method=/x.v1.S/Get code=OK task_id=t-1", "rpc method=/x.v1.S/Get code=OK task_id=t-1"),
        ("rpc code=OK caller=platform-key", "rpc code=OK caller=platform-key"),
        ("rpc code=OK caller=token:ci", "rpc code=OK caller=token:ci"),
        ("cfg.x-api-key=abcdefgh", "cfg.x-api-key=[REDACTED]"),
    ],
)
def test_redactor_patterns(text: str, expected: str) -> None:
    assert Redactor().redact(text) == expected


def test_console_format_renders_fields_as_key_values() -> None:
    buffer = io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    try:
        configure_logging("console", "INFO", secrets=[DEFAULT_KEY], stream=buffer)
        logging.getLogger("bridge.access").info(
            "rpc", extra={"method": "/a/B", "code": "OK", "note": "two words"}
        )
        logging.getLogger("x").info("key is %s", DEFAULT_KEY)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
    first, second = buffer.getvalue().splitlines()
    assert first.endswith('INFO bridge.access rpc method=/a/B code=OK note="two words"')
    assert second.endswith(f"INFO x key is {REDACTED}")


def test_secrets_of_a_call_come_from_its_metadata_and_secret_fields_at_any_depth() -> None:
    request = secret_request()
    request.mcp_servers[0].headers["x-custom"] = "mcp-header-value-1"
    metadata = (("authorization", f"Bearer {CALLER_KEY}"), ("x-request-id", "req-not-secret"))
    assert secrets_of_call(metadata, request) == {
        f"Bearer {CALLER_KEY}",
        CALLER_KEY,
        OIDC_TOKEN,
        USER_TOKEN,
        MCP_KEY,
        MCP_SECRET,
        "mcp-header-value-1",
    }
    plain = task_service_pb2.GetTaskRequest(task_id="task-id-long-enough")
    assert secrets_of_call((), plain) == frozenset()


def test_new_request_ids_are_unique_hex_and_a_new_process_starts_a_new_sequence() -> None:
    ids = RequestIds()
    made = [ids.new() for _ in range(1000)]
    assert len(set(made)) == len(made)
    assert all(re.fullmatch(r"[0-9a-f]{32}", made_id) for made_id in made)
    ids.reseed()  # what a forked worker does
    again = ids.new()
    assert again[:16] != made[0][:16]
    assert again not in made


class _CountingStream(io.StringIO):
    """A text stream that counts its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


async def test_lines_of_one_loop_turn_are_written_together_and_in_order() -> None:
    stream = _CountingStream()
    handler = LoopBatchingHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("tests.batching")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for i in range(5):
            logger.warning("line %d", i)
        assert stream.getvalue() == ""  # held until the end of this turn
        await asyncio.sleep(0)
        assert stream.getvalue() == "".join(f"line {i}\n" for i in range(5))
        assert stream.writes == 1
        logger.warning("held")
        # A line from another thread goes out at once, after the held one.
        await asyncio.to_thread(logger.warning, "from a thread")
        assert stream.getvalue().endswith("held\nfrom a thread\n")
        logger.warning("flushed at close")
        handler.close()
        assert stream.getvalue().endswith("flushed at close\n")
    finally:
        logger.removeHandler(handler)


def test_without_a_loop_every_line_is_written_at_once() -> None:
    stream = _CountingStream()
    handler = LoopBatchingHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.handle(logging.makeLogRecord({"msg": "now", "levelno": logging.INFO}))
    assert stream.getvalue() == "now\n"

"""No key or token ever appears in a log line or an error message of the bridge."""

from __future__ import annotations

import logging
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from tests.e2e.harness import API_KEY, bridge_stack
from xpander.bridge.v1 import task_pb2, task_service_pb2

Request = task_service_pb2
CALL_KEY = "sk-call-key-0123456789"
OIDC = "oidc-secret-token-abcdef"
USER_TOKEN = "user-token-secret-987654"
MCP_KEY = "mcp-secret-key-555"
SECRETS = (API_KEY, CALL_KEY, OIDC, USER_TOKEN, MCP_KEY)


def tokens() -> struct_pb2.Struct:
    value = struct_pb2.Struct()
    value.update({"github": USER_TOKEN})
    return value


async def test_secrets_stay_out_of_logs_and_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []
    async with bridge_stack() as stack:
        secret_fields: dict[str, Any] = {"user_oidc_token": OIDC, "user_tokens": tokens()}
        task = (await stack.create("#delay=0.01", **secret_fields)).task
        await stack.stream(task.id)
        key = [("x-api-key", CALL_KEY)]
        await stack.control.fault("task_events", drop_after_events=2)
        await stack.stream(task.id)

        async def fails(call: object) -> None:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await call  # type: ignore[misc]
            messages.append(error.value.details() or "")
            messages.append(str(error.value.trailing_metadata()))

        for status in (400, 401, 403, 500, 503):
            await stack.control.fault("get_task", status=status)
            await fails(stack.stub.GetTask(Request.GetTaskRequest(task_id=task.id), metadata=key, timeout=5))
        await stack.control.fault("create_task", status=422)
        await fails(
            stack.stub.CreateTask(
                Request.CreateTaskRequest(agent_id="demo-agent", user_oidc_token=OIDC, user_tokens=tokens()),
                metadata=[("authorization", f"Bearer {CALL_KEY}")],
                timeout=5,
            )
        )
        bad_server = task_pb2.MCPServerDetails(
            type=task_pb2.MCP_SERVER_TYPE_REMOTE, url="nope", api_key=MCP_KEY
        )
        await fails(
            stack.stub.CreateTask(
                Request.CreateTaskRequest(agent_id="a/b", user_oidc_token=OIDC, mcp_servers=[bad_server]),
                metadata=key,
                timeout=5,
            )
        )
        await stack.control.fault("task_events", status=503, times=None)
        await stack.control.fault("get_task", latency=0.5)
        await fails(stack.stub.GetTask(Request.GetTaskRequest(task_id=task.id), metadata=key, timeout=0.1))
        await stack.control.clear_faults()
        await stack.control.fault("task_events", status=503, times=None)

        async def stream_fails() -> None:
            async for _ in stack.stub.StreamEvents(
                Request.StreamEventsRequest(task_id=task.id, after_sequence=1)
            ):
                pass

        await fails(stream_fails())

    lines = [
        record.getMessage() for record in caplog.records if not record.name.startswith("bridge.localplatform")
    ]
    assert lines, "expected the bridge to log something"
    assert len(messages) == 2 * 9  # details and trailers of nine failed calls
    for secret in SECRETS:
        assert not [line for line in lines if secret in line], secret
        assert not [message for message in messages if secret in message], secret

"""A hostile caller over raw HTTP/2: forged metadata, undecodable bodies, and a platform echoing keys.

grpcio clients refuse to send CR/LF or non-UTF-8 metadata; the `h2` client here sends whatever it is given.
What grpc core does with such values (checked here, grpcio 1.85): it passes CR, LF, tabs and control
characters in a header value to the servicer as they are, and decodes a value that is not UTF-8 as Latin-1
after logging it. Every test here failed on the bridge before issue 11.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc
import h2.config
import h2.connection
import h2.events
import pytest
from google.rpc import error_details_pb2, status_pb2
from pydantic import SecretStr

from bridge.config import Settings
from bridge.ops.auth import UnsafeExposureError
from bridge.server import BridgeServer
from tests.e2e.harness import API_KEY, Stack, bridge_stack, failure_of
from tests.e2e.processes import BIN, environment
from xpander.bridge.v1 import task_service_pb2, task_service_pb2_grpc

GET_TASK = "/xpander.bridge.v1.TaskService/GetTask"
STREAM_EVENTS = "/xpander.bridge.v1.TaskService/StreamEvents"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
BRIDGE_TOKEN = "ci-bridge-token-0123456789"


@dataclass(frozen=True)
class RawAnswer:
    """The response headers and trailers of one raw call, merged; grpc puts a refusal in either."""

    headers: dict[bytes, bytes]

    @property
    def code(self) -> int:
        return int(self.headers[b"grpc-status"])

    @property
    def status(self) -> status_pb2.Status:
        packed = self.headers[b"grpc-status-details-bin"]
        return status_pb2.Status.FromString(base64.b64decode(packed + b"=" * (-len(packed) % 4)))

    def detail(self, kind: type[error_details_pb2.ErrorInfo | error_details_pb2.BadRequest]) -> object:
        for any_detail in self.status.details:
            if any_detail.Is(kind.DESCRIPTOR):
                found = kind()
                any_detail.Unpack(found)
                return found
        raise AssertionError(f"no {kind.__name__} in the status")


async def raw_call(address: str, method: str, metadata: list[tuple[bytes, bytes]], body: bytes) -> RawAnswer:
    """One gRPC call written by hand: HEADERS with `metadata` as given, one DATA frame holding `body`."""
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    config = h2.config.H2Configuration(
        client_side=True, validate_outbound_headers=False, normalize_outbound_headers=False
    )
    connection = h2.connection.H2Connection(config)
    connection.initiate_connection()
    headers = [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", method.encode()),
        (b":authority", address.encode()),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
        *metadata,
    ]
    connection.send_headers(1, headers)
    connection.send_data(1, b"\x00" + struct.pack(">I", len(body)) + body, end_stream=True)
    writer.write(connection.data_to_send())
    answer: dict[bytes, bytes] = {}
    try:
        async with asyncio.timeout(10):
            while True:
                data = await reader.read(65536)
                assert data, "the bridge closed the connection before the call ended"
                for event in connection.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                        answer.update(dict(event.headers))
                    if isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                        return RawAnswer(answer)
                writer.write(connection.data_to_send())
    finally:
        writer.close()


def get_task_body(task_id: str = "task-1") -> bytes:
    return task_service_pb2.GetTaskRequest(task_id=task_id).SerializeToString()


def bridge_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every record the bridge and grpc logged, message and traceback (not the platform's, not the test's)."""
    return [
        record.getMessage() + (str(record.exc_info) if record.exc_info else "") + (record.exc_text or "")
        for record in caplog.records
        if record.name.startswith(("bridge.", "grpc")) and not record.name.startswith("bridge.localplatform")
    ]


HOSTILE_METADATA = [
    pytest.param(b"x-api-key", b"abc\r\nx-evil: 1", id="crlf-key"),
    pytest.param(b"x-api-key", b"abc\r\n\r\nDELETE /agent-execution/other HTTP/1.1", id="smuggled-request"),
    pytest.param(b"x-api-key", b"\xff\xfe-not-utf8-key", id="non-utf8-key"),
    pytest.param(b"x-api-key", b"abc\x01def-key", id="control-key"),
    pytest.param(b"x-api-key", b"abc\tdef-key", id="tab-key"),
    pytest.param(b"x-api-key", "k\u00e9y-non-ascii".encode(), id="non-ascii-key"),
    pytest.param(b"authorization", b"Bearer abc\x01def-key", id="control-bearer"),
    pytest.param(b"x-organization-id", b"org\xff-id", id="non-utf8-organization"),
    pytest.param(b"x-bridge-token", b"\xff\xfe-not-utf8-token", id="non-utf8-bridge-token"),
]


@pytest.mark.parametrize(("key", "value"), HOSTILE_METADATA)
async def test_hostile_credential_metadata_is_invalid_argument_naming_the_key(
    key: bytes, value: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with bridge_stack(bridge_tokens=BRIDGE_TOKEN) as stack:
        await stack.control.reset_stats()
        answer = await raw_call(stack.bridge.address, GET_TASK, [(key, value)], get_task_body())
        assert await stack.control.requests("get_task") == {}
    assert answer.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    info = answer.detail(error_details_pb2.ErrorInfo)
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.reason == "INVALID_METADATA"
    bad_request = answer.detail(error_details_pb2.BadRequest)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert [violation.field for violation in bad_request.field_violations] == [key.decode()]
    shown = [answer.headers.get(b"grpc-message", b"").decode("latin-1"), answer.status.message]
    logged = bridge_lines(caplog)
    # The value as sent, as grpc decodes it (Latin-1 after UTF-8 fails), and as a bytes repr would print it.
    forms = {value.decode("latin-1"), value.decode("utf-8", "replace"), repr(value)[2:-1], value[3:9].hex()}
    for form in forms:
        assert not [text for text in shown + logged if form in text], form


async def test_a_default_key_read_with_a_trailing_newline_goes_on_the_wire_stripped() -> None:
    async with bridge_stack(api_key=f"  {API_KEY}\n") as stack:
        task = (await stack.create("#delay=0.01")).task
        got = await stack.stub.GetTask(task_service_pb2.GetTaskRequest(task_id=task.id), timeout=5)
    assert got.task.id == task.id


@pytest.mark.parametrize(
    ("method", "streaming"),
    [(GET_TASK, False), (STREAM_EVENTS, True), (HEALTH_CHECK, False)],
    ids=["unary", "server-streaming", "without-ops-stages"],
)
async def test_undecodable_bodies_are_invalid_argument_with_one_warning_a_minute(
    method: str, streaming: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with bridge_stack() as stack:
        answers = [await raw_call(stack.bridge.address, method, [], b"\xff\xff\xff\xff") for _ in range(50)]
        still_served = await stack.create("#delay=0.01")
    assert still_served.task.id
    assert {answer.code for answer in answers} == {grpc.StatusCode.INVALID_ARGUMENT.value[0]}
    info = answers[0].detail(error_details_pb2.ErrorInfo)
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert (info.reason, info.metadata["method"]) == ("INVALID_REQUEST_BODY", method)
    assert method in answers[0].status.message
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name != "bridge.access"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "undecodable request body" in warnings[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a caller's bad body"


@asynccontextmanager
async def echoing_platform_stack(detail: str) -> AsyncIterator[Stack]:
    """A stack whose platform answers GetTask with HTTP 401 and `detail`; callers use a bridge token."""
    async with bridge_stack(bridge_tokens=f"ci:{BRIDGE_TOKEN}") as stack:
        await stack.control.fault("get_task", status=401, detail=detail, times=None)
        yield stack


@pytest.mark.parametrize(
    "detail",
    [
        f"invalid key {API_KEY} for this organization",
        # Cut by the bridge to 300 characters in the middle of the key.
        "x" * (300 - len(API_KEY) // 2) + API_KEY,
        f"token {BRIDGE_TOKEN} is not a platform key",
    ],
    ids=["whole-key", "key-cut-short", "bridge-token"],
)
async def test_a_platform_echoing_a_secret_never_shows_it_to_the_caller(
    detail: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with echoing_platform_stack(detail) as stack:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stack.stub.GetTask(
                task_service_pb2.GetTaskRequest(task_id="task-1"),
                metadata=[("x-bridge-token", BRIDGE_TOKEN)],
                timeout=5,
            )
    failure = failure_of(raised.value)
    assert failure.code == grpc.StatusCode.UNAUTHENTICATED
    assert "[REDACTED]" in failure.message
    shown = [failure.message, str(raised.value.trailing_metadata()), str(failure.error_info)]
    for secret in (API_KEY, API_KEY[: len(API_KEY) // 2], BRIDGE_TOKEN):
        assert not [text for text in shown + bridge_lines(caplog) if secret in text], secret


async def test_a_platform_echoing_the_callers_own_key_never_shows_it() -> None:
    caller_key = "caller-own-key-42"
    async with echoing_platform_stack(f"key {caller_key} revoked") as stack:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stack.stub.GetTask(
                task_service_pb2.GetTaskRequest(task_id="task-1"),
                metadata=[("x-api-key", caller_key)],
                timeout=5,
            )
    assert caller_key not in (raised.value.details() or "")


async def test_list_tasks_ids_are_percent_encoded_in_the_path() -> None:
    paths: list[str] = []

    async def platform(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        paths.append(head.split(b" ")[1].decode())
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n[]")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(platform, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = Settings(
        listen="127.0.0.1:0",
        base_url=f"http://127.0.0.1:{port}",
        organization_id="org-1",
        api_key=SecretStr(API_KEY),
        local_platform=False,
        upstream_read_retries=0,
    )
    async with (
        server,
        BridgeServer(settings) as bridge,
        grpc.aio.insecure_channel(bridge.address) as channel,
    ):
        tasks = task_service_pb2_grpc.TaskServiceStub(channel)
        await tasks.ListTasks(task_service_pb2.ListTasksRequest(agent_id="agent;v=1@x"), timeout=5)
        await tasks.ListTasks(task_service_pb2.ListTasksRequest(user_id="user:1;x"), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await tasks.ListTasks(task_service_pb2.ListTasksRequest(agent_id="../x"), timeout=5)
    assert [path.rpartition("/")[2] for path in paths] == ["agent%3Bv%3D1%40x", "user%3A1%3Bx"]
    assert failure_of(raised.value).fields == ["agent_id"]


@pytest.mark.parametrize("key", ["two words-in-a-key", "k\u00e9y-non-ascii", "key\x01with-control"])
async def test_serve_refuses_a_default_key_outside_the_character_set_in_one_line(key: str) -> None:
    process = await asyncio.create_subprocess_exec(
        str(BIN / "xpander-bridge"),
        "serve",
        "--listen",
        "127.0.0.1:0",
        env=environment(XPANDER_API_KEY=f" {key}\n"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        _, stderr = await process.communicate()
    lines = stderr.decode().splitlines()
    assert process.returncode == 2
    assert len(lines) == 1, lines
    assert "XPANDER_API_KEY" in lines[0]
    assert key not in lines[0]


async def test_an_embedded_bridge_refuses_a_default_key_that_cannot_travel_in_a_header() -> None:
    settings = Settings(
        listen="127.0.0.1:0", api_key=SecretStr("key with spaces"), base_url="http://127.0.0.1:9"
    )
    with pytest.raises(UnsafeExposureError, match="XPANDER_API_KEY"):
        await BridgeServer(settings).start()
    assert Settings(api_key=SecretStr(" padded-key\n")).api_key == SecretStr("padded-key")

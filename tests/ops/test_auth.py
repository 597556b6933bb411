"""Caller auth: bridge tokens, own platform keys, open health, and the start-up refusal."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from bridge.ops.auth import AuthInterceptor, BridgeTokens, UnsafeExposureError, check_exposure, is_loopback
from bridge.ops.runtime import Operations
from bridge.ops.settings import OpsSettings
from tests.ops.support import Served, rich_status, start_server, stub
from xpander.bridge.v1 import task_service_pb2

TOKEN = "bridge-token-0123456789abcdef"
OTHER_TOKEN = "another-token-fedcba9876543210"


async def whoami(served: Served, metadata: tuple[tuple[str, str], ...] = ()) -> str:
    async with grpc.aio.insecure_channel(served.address) as channel:
        response = await stub(channel).GetTask(
            task_service_pb2.GetTaskRequest(task_id="whoami"), metadata=metadata
        )
    return response.task.id


async def refused(served: Served, metadata: tuple[tuple[str, str], ...] = ()) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(served.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await stub(channel).GetTask(task_service_pb2.GetTaskRequest(task_id="whoami"), metadata=metadata)
    return failure.value


async def test_with_a_default_key_callers_need_a_bridge_token_or_their_own_key() -> None:
    tokens = BridgeTokens.parse(f"ci:{TOKEN}\n# a comment\n\n{OTHER_TOKEN}\n")
    served = await start_server(interceptors=[AuthInterceptor(tokens, default_key_configured=True)])
    try:
        assert await whoami(served, (("x-bridge-token", TOKEN),)) == "token:ci"
        assert await whoami(served, (("x-bridge-token", OTHER_TOKEN),)) == "token:token4"
        assert await whoami(served, (("x-api-key", "caller-own-key"),)) == "platform-key"
        assert await whoami(served, (("authorization", "Bearer caller-own-key"),)) == "platform-key"

        anonymous = await refused(served)
        assert anonymous.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "x-bridge-token" in rich_status(anonymous).message
        wrong = await refused(served, (("x-bridge-token", "not-a-valid-token-at-all"), ("x-api-key", "k")))
        assert wrong.code() == grpc.StatusCode.UNAUTHENTICATED
        # A bridge token in `authorization: Bearer` is a platform key by contract, so it passes as one.
        assert await whoami(served, (("authorization", f"Bearer {TOKEN}"),)) == "platform-key"

        async with grpc.aio.insecure_channel(served.address) as channel:
            check = channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )
            response = await check(health_pb2.HealthCheckRequest())
            assert response.status == health_pb2.HealthCheckResponse.SERVING

        async with grpc.aio.insecure_channel(served.address) as channel:
            stream = stub(channel).StreamEvents(task_service_pb2.StreamEventsRequest(task_id="t"))
            with pytest.raises(grpc.aio.AioRpcError) as failure:
                await stream.read()
            assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await served.server.stop(None)


async def test_without_a_default_key_no_bridge_token_is_needed() -> None:
    tokens = BridgeTokens.parse(TOKEN)
    served = await start_server(interceptors=[AuthInterceptor(tokens, default_key_configured=False)])
    try:
        assert await whoami(served) == "open"
        assert await whoami(served, (("x-bridge-token", TOKEN),)) == "token:token1"
    finally:
        await served.server.stop(None)


async def test_required_client_certificates_or_allow_unauthenticated_open_the_default_key() -> None:
    mtls = AuthInterceptor(BridgeTokens(), default_key_configured=True, client_cert_required=True)
    opened = AuthInterceptor(BridgeTokens(), default_key_configured=True, allow_unauthenticated=True)
    for interceptor, caller in ((mtls, "mtls"), (opened, "open")):
        served = await start_server(interceptors=[interceptor])
        try:
            assert await whoami(served) == caller
        finally:
            await served.server.stop(None)


def test_tokens_load_from_file_and_environment(tmp_path: Path) -> None:
    file = tmp_path / "tokens"
    file.write_text(f"# callers\nci:{TOKEN}\n", encoding="utf-8")
    tokens = BridgeTokens.load(file, f"batch:{OTHER_TOKEN}, {OTHER_TOKEN[::-1]}")
    assert len(tokens) == 3
    assert tokens.match(TOKEN) == "ci"
    assert tokens.match(OTHER_TOKEN) == "batch"
    assert tokens.match("nope") is None
    assert TOKEN not in repr(tokens)
    settings = OpsSettings(bridge_tokens_file=file, bridge_tokens=OTHER_TOKEN)  # type: ignore[arg-type]
    assert set(Operations(settings, default_key_configured=True).secrets()) == {TOKEN, OTHER_TOKEN}


def test_short_tokens_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        BridgeTokens.parse("ci:short")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("[::]", False),
        ("10.1.2.3", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_startup_refuses_a_default_key_on_an_open_address_without_caller_auth() -> None:
    with pytest.raises(UnsafeExposureError, match="--allow-unauthenticated"):
        check_exposure(
            "0.0.0.0",
            default_key_configured=True,
            tokens=BridgeTokens(),
            client_cert_required=False,
            allow_unauthenticated=False,
        )
    ops = Operations(OpsSettings(), default_key_configured=True)
    with pytest.raises(UnsafeExposureError):
        ops.check_startup("0.0.0.0")
    ops.check_startup("127.0.0.1")
    Operations(OpsSettings(), default_key_configured=False).check_startup("0.0.0.0")
    Operations(OpsSettings(allow_unauthenticated=True), default_key_configured=True).check_startup("0.0.0.0")
    Operations(
        OpsSettings(bridge_tokens=TOKEN),  # type: ignore[arg-type]
        default_key_configured=True,
    ).check_startup("0.0.0.0")
    check_exposure(
        "0.0.0.0",
        default_key_configured=True,
        tokens=BridgeTokens(),
        client_cert_required=True,
        allow_unauthenticated=False,
    )

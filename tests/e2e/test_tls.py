"""TLS through the real BridgeServer: TaskService over TLS and mTLS, and verified TLS towards the platform.

Certificates are made at test time (tests/ops/certs.py). Plaintext, untrusted and unauthenticated clients fail
at the handshake (UNAVAILABLE); a probe port keeps answering health in plaintext beside a TLS listener.
"""

from __future__ import annotations

import asyncio
import ssl

import grpc
import pytest

from bridge.config import Settings
from bridge.ops.healthcheck import probe
from bridge.ops.tls import channel_credentials
from bridge.server import BridgeServer
from tests.e2e.harness import API_KEY, bridge_stack, failure_of
from tests.e2e.recorder import recording_platform
from tests.ops.certs import Pki, make_pki
from xpander.bridge.v1 import events_pb2, task_service_pb2, task_service_pb2_grpc

Request = task_service_pb2


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def round_trip(address: str, credentials: grpc.ChannelCredentials) -> list[int]:
    """CreateTask, GetTask and a whole StreamEvents over a TLS channel: the event types received."""
    async with grpc.aio.secure_channel(address, credentials) as channel:
        stub = task_service_pb2_grpc.TaskServiceStub(channel)
        created = await stub.CreateTask(
            Request.CreateTaskRequest(agent_id="demo-agent", prompt="#delay=0.001", events_streaming=True),
            timeout=5,
        )
        read = await stub.GetTask(Request.GetTaskRequest(task_id=created.task.id), timeout=5)
        assert read.task.id == created.task.id
        stream = stub.StreamEvents(Request.StreamEventsRequest(task_id=created.task.id), timeout=10)
        return [message.event.type async for message in stream]


async def refused(address: str, credentials: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    """The code of a GetTask over a plaintext (None) or TLS channel that the bridge should not accept."""
    channel = (
        grpc.aio.secure_channel(address, credentials)
        if credentials is not None
        else grpc.aio.insecure_channel(address)
    )
    async with channel:
        stub = task_service_pb2_grpc.TaskServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await stub.GetTask(Request.GetTaskRequest(task_id="t"), timeout=5)
    return failure.value.code()


async def test_task_service_over_tls_and_a_plaintext_probe_port(pki: Pki) -> None:
    async with bridge_stack(
        tls_cert_file=pki.server.cert, tls_key_file=pki.server.key, health_listen="127.0.0.1:0"
    ) as stack:
        address = stack.bridge.address
        trusted = channel_credentials(pki.ca)
        assert (await round_trip(address, trusted))[-1] == events_pb2.TASK_EVENT_TYPE_TASK_FINISHED
        # The certificate names localhost too.
        assert await round_trip(f"localhost:{stack.bridge.port}", trusted)
        assert await refused(address, None) == grpc.StatusCode.UNAVAILABLE
        assert await refused(address, channel_credentials(pki.wrong_ca)) == grpc.StatusCode.UNAVAILABLE
        probe_address = f"127.0.0.1:{stack.bridge.operations.probe_port}"
        assert await asyncio.to_thread(probe, probe_address) == "SERVING"


async def test_mtls_requires_a_client_certificate_from_the_client_ca(pki: Pki) -> None:
    async with bridge_stack(
        tls_cert_file=pki.server.cert,
        tls_key_file=pki.server.key,
        tls_client_ca_file=pki.ca,
        tls_require_client_cert=True,
    ) as stack:
        address = stack.bridge.address
        client = channel_credentials(pki.ca, cert_file=pki.client.cert, key_file=pki.client.key)
        assert (await round_trip(address, client))[-1] == events_pb2.TASK_EVENT_TYPE_TASK_FINISHED
        stranger = channel_credentials(pki.ca, cert_file=pki.wrong_client.cert, key_file=pki.wrong_client.key)
        assert await refused(address, channel_credentials(pki.ca)) == grpc.StatusCode.UNAVAILABLE
        assert await refused(address, stranger) == grpc.StatusCode.UNAVAILABLE
        assert await refused(address, None) == grpc.StatusCode.UNAVAILABLE


async def test_the_platform_certificate_is_verified_against_the_configured_bundle(pki: Pki) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server.cert, pki.server.key)
    async with recording_platform(ssl_context=context) as platform:
        base = {"listen": "127.0.0.1:0", "base_url": platform.url, "api_key": API_KEY}
        answers: dict[str, task_service_pb2.GetTaskResponse | grpc.aio.AioRpcError] = {}
        for name, bundle in (("trusted", pki.ca), ("system", None), ("wrong", pki.wrong_ca)):
            settings = Settings(**base, upstream_ca_bundle=bundle)  # type: ignore[arg-type]
            async with (
                BridgeServer(settings) as bridge,
                grpc.aio.insecure_channel(bridge.address) as channel,
            ):
                stub = task_service_pb2_grpc.TaskServiceStub(channel)
                try:
                    answers[name] = await stub.GetTask(Request.GetTaskRequest(task_id="t-tls"), timeout=5)
                except grpc.aio.AioRpcError as error:
                    answers[name] = error
    trusted = answers["trusted"]
    assert isinstance(trusted, task_service_pb2.GetTaskResponse)
    assert trusted.task.id == "t-tls"
    for name in ("system", "wrong"):
        answer = answers[name]
        assert isinstance(answer, grpc.aio.AioRpcError), name
        failure = failure_of(answer)
        assert failure.code == grpc.StatusCode.UNAVAILABLE
        assert failure.error_info is not None
        assert failure.error_info.reason == "UPSTREAM_UNREACHABLE"
        assert "CERTIFICATE_VERIFY_FAILED" in failure.message
    # Only the trusted bridge's request got through the handshake.
    assert len(platform.headers) == 1

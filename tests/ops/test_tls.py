"""TLS and mTLS on the gRPC listener, and certificate verification towards the platform."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import grpc
import httpx
import pytest
from aiohttp import web

from bridge.ops.healthcheck import probe
from bridge.ops.settings import OpsSettings
from bridge.ops.tls import channel_credentials, server_credentials, server_credentials_from, upstream_verify
from tests.ops.certs import Pki, make_pki
from tests.ops.support import start_server, stub
from xpander.bridge.v1 import task_service_pb2


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def get_task(channel: grpc.aio.Channel) -> str:
    response = await stub(channel).GetTask(task_service_pb2.GetTaskRequest(task_id="t-1"), timeout=5)
    return response.task.id


async def call_fails(channel: grpc.aio.Channel) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub(channel).GetTask(task_service_pb2.GetTaskRequest(task_id="t-1"), timeout=5)
    return failure.value.code()


async def test_tls_calls_succeed_and_plaintext_or_untrusted_calls_fail(pki: Pki) -> None:
    settings = OpsSettings(tls_cert_file=pki.server.cert, tls_key_file=pki.server.key)
    served = await start_server(credentials=server_credentials_from(settings))
    try:
        async with grpc.aio.secure_channel(served.address, channel_credentials(pki.ca)) as channel:
            assert await get_task(channel) == "t-1"
        async with grpc.aio.secure_channel(
            f"localhost:{served.port}", channel_credentials(pki.ca)
        ) as channel:
            assert await get_task(channel) == "t-1"
        async with grpc.aio.insecure_channel(served.address) as channel:
            assert await call_fails(channel) == grpc.StatusCode.UNAVAILABLE
        async with grpc.aio.secure_channel(served.address, channel_credentials(pki.wrong_ca)) as channel:
            assert await call_fails(channel) == grpc.StatusCode.UNAVAILABLE
    finally:
        await served.server.stop(None)


async def test_mtls_requires_a_client_certificate_from_the_client_ca(pki: Pki) -> None:
    credentials = server_credentials(
        pki.server.cert, pki.server.key, client_ca_file=pki.ca, require_client_cert=True
    )
    served = await start_server(credentials=credentials)
    try:
        good = channel_credentials(pki.ca, cert_file=pki.client.cert, key_file=pki.client.key)
        async with grpc.aio.secure_channel(served.address, good) as channel:
            assert await get_task(channel) == "t-1"
        async with grpc.aio.secure_channel(served.address, channel_credentials(pki.ca)) as channel:
            assert await call_fails(channel) == grpc.StatusCode.UNAVAILABLE
        stranger = channel_credentials(pki.ca, cert_file=pki.wrong_client.cert, key_file=pki.wrong_client.key)
        async with grpc.aio.secure_channel(served.address, stranger) as channel:
            assert await call_fails(channel) == grpc.StatusCode.UNAVAILABLE
        async with grpc.aio.insecure_channel(served.address) as channel:
            assert await call_fails(channel) == grpc.StatusCode.UNAVAILABLE
    finally:
        await served.server.stop(None)


async def test_optional_client_certificates_still_verify_the_ones_presented(pki: Pki) -> None:
    credentials = server_credentials(pki.server.cert, pki.server.key, client_ca_file=pki.ca)
    served = await start_server(credentials=credentials)
    try:
        async with grpc.aio.secure_channel(served.address, channel_credentials(pki.ca)) as channel:
            assert await get_task(channel) == "t-1"
        good = channel_credentials(pki.ca, cert_file=pki.client.cert, key_file=pki.client.key)
        async with grpc.aio.secure_channel(served.address, good) as channel:
            assert await get_task(channel) == "t-1"
    finally:
        await served.server.stop(None)


async def test_health_probe_speaks_tls(pki: Pki) -> None:
    credentials = server_credentials(
        pki.server.cert, pki.server.key, client_ca_file=pki.ca, require_client_cert=True
    )
    served = await start_server(credentials=credentials)
    try:
        client = channel_credentials(pki.ca, cert_file=pki.client.cert, key_file=pki.client.key)
        # The probe is a blocking client: run it off the loop serving the call.
        assert await asyncio.to_thread(probe, served.address, credentials=client) == "SERVING"
        assert await asyncio.to_thread(probe, served.address, timeout=2) == "UNAVAILABLE"
    finally:
        await served.server.stop(None)


async def https_upstream(pki: Pki) -> tuple[web.AppRunner, str]:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/ok", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server.cert, pki.server.key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    return runner, f"https://127.0.0.1:{runner.addresses[0][1]}/ok"


async def test_platform_certificates_are_verified_against_the_configured_bundle(pki: Pki) -> None:
    runner, url = await https_upstream(pki)
    try:
        async with httpx.AsyncClient(verify=upstream_verify(pki.ca)) as trusted:
            assert (await trusted.get(url)).json() == {"ok": True}
        # The default (system CAs) does not know the test CA: verification is on, so this fails.
        assert upstream_verify(None) is True
        async with httpx.AsyncClient(verify=upstream_verify(None)) as default:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await default.get(url)
        async with httpx.AsyncClient(verify=upstream_verify(pki.wrong_ca)) as wrong:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await wrong.get(url)
    finally:
        await runner.cleanup()


def test_missing_upstream_bundle_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        upstream_verify(tmp_path / "nope.pem")


def test_plaintext_when_no_certificate_is_configured() -> None:
    assert server_credentials_from(OpsSettings()) is None

"""Operations end to end; settings and flags; the uvloop runner; the health probe CLI and probe port."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from pydantic import ValidationError

from bridge.ops import eventloop, healthcheck
from bridge.ops.auth import CallerAuth
from bridge.ops.calls import OpsInterceptor
from bridge.ops.limits import CallLimits
from bridge.ops.logs import AccessLog
from bridge.ops.metrics import CallMetrics
from bridge.ops.runtime import Operations
from bridge.ops.settings import OpsSettings, add_arguments, overrides_from_args
from bridge.ops.tls import channel_credentials
from tests.ops.certs import make_pki
from tests.ops.support import FixedTaskService, start_server, stub
from xpander.bridge.v1 import task_service_pb2, task_service_pb2_grpc


async def test_operations_serve_metrics_and_a_plaintext_probe_port_beside_a_tls_listener(
    tmp_path: Path,
) -> None:
    pki = make_pki(tmp_path)
    settings = OpsSettings(
        tls_cert_file=pki.server.cert,
        tls_key_file=pki.server.key,
        metrics_listen="127.0.0.1:0",
        health_listen="127.0.0.1:0",
    )
    ops = Operations(settings, default_key_configured=False)
    (interceptor,) = ops.interceptors()
    assert isinstance(interceptor, OpsInterceptor)
    assert [type(stage) for stage in interceptor.stages] == [AccessLog, CallMetrics, CallerAuth, CallLimits]
    server = grpc.aio.server(
        interceptors=ops.interceptors(), options=ops.server_options(), compression=ops.compression()
    )
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    task_service_pb2_grpc.add_TaskServiceServicer_to_server(FixedTaskService(), server)
    port = ops.add_port(server, "127.0.0.1:0")
    await server.start()
    await ops.start(health)
    try:
        async with grpc.aio.secure_channel(f"127.0.0.1:{port}", channel_credentials(pki.ca)) as channel:
            await stub(channel).GetTask(task_service_pb2.GetTaskRequest(task_id="t-1"))
        assert ops.probe_port is not None
        probe_address = f"127.0.0.1:{ops.probe_port}"
        assert await asyncio.to_thread(healthcheck.probe, probe_address) == "SERVING"
        await health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert await asyncio.to_thread(healthcheck.main, ["--address", probe_address]) == 1
        # The probe port serves health alone.
        async with grpc.aio.insecure_channel(probe_address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as failure:
                await stub(channel).GetTask(task_service_pb2.GetTaskRequest(task_id="t-1"))
            assert failure.value.code() == grpc.StatusCode.UNIMPLEMENTED
        async with httpx.AsyncClient() as scraper:
            text = (await scraper.get(f"http://127.0.0.1:{ops.metrics_port}/metrics")).text
        assert 'bridge_grpc_requests_total{code="OK",method="GetTask"' in text
    finally:
        await ops.stop()
        await server.stop(None)


async def test_health_probe_cli_against_a_plaintext_server() -> None:
    served = await start_server()
    try:
        assert await asyncio.to_thread(healthcheck.main, ["--address", served.address]) == 0
        assert (
            await asyncio.to_thread(healthcheck.main, ["--address", served.address, "--service", "nope"]) == 1
        )
    finally:
        await served.server.stop(None)
    assert await asyncio.to_thread(healthcheck.main, ["--address", served.address, "--timeout", "0.5"]) == 1


def test_probe_address_follows_the_bridge_environment() -> None:
    assert healthcheck.default_address({}) == "127.0.0.1:50051"
    assert healthcheck.default_address({"BRIDGE_LISTEN": "0.0.0.0:6000"}) == "127.0.0.1:6000"
    assert healthcheck.default_address({"BRIDGE_LISTEN": "[::]:6000"}) == "[::1]:6000"
    env = {"BRIDGE_LISTEN": "0.0.0.0:6000", "BRIDGE_HEALTH_LISTEN": "0.0.0.0:6001"}
    assert healthcheck.default_address(env) == "127.0.0.1:6001"


def test_settings_from_environment_and_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_WORKERS", "3")
    monkeypatch.setenv("BRIDGE_LOG_FORMAT", "json")
    monkeypatch.setenv("BRIDGE_MAX_CONNECTION_AGE", "1800")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--workers", "2", "--no-uvloop", "--metrics-listen", "0.0.0.0:9090"])
    settings = OpsSettings(**overrides_from_args(args))
    assert settings.workers == 2  # the flag wins over the environment
    assert settings.uvloop is False
    assert settings.log_format == "json"
    assert settings.max_connection_age == 1800
    assert settings.metrics_listen == "0.0.0.0:9090"
    assert "--bridge-tokens " not in parser.format_help()  # secrets never come as flags


@pytest.mark.parametrize(
    "bad",
    [
        {"tls_cert_file": "/c.pem"},
        {"tls_require_client_cert": True},
        {"tls_cert_file": "/c", "tls_key_file": "/k", "tls_require_client_cert": True},
        {"metrics_listen": "9090"},
        {"workers": 0},
    ],
)
def test_inconsistent_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        OpsSettings(**bad)  # type: ignore[arg-type]


def test_uvloop_runs_the_server_when_wanted() -> None:
    async def serve_once() -> str:
        served = await start_server()
        try:
            async with grpc.aio.insecure_channel(served.address) as channel:
                response = await stub(channel).GetTask(task_service_pb2.GetTaskRequest(task_id="t-1"))
        finally:
            await served.server.stop(None)
        return f"{type(asyncio.get_running_loop()).__module__}:{response.task.id}"

    assert eventloop.uvloop_available()
    assert eventloop.run(serve_once(), use_uvloop=True) == "uvloop:t-1"
    assert eventloop.run(serve_once(), use_uvloop=False).startswith("asyncio.")

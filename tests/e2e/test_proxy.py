"""The platform reached through a real forward proxy (Debian's tinyproxy, started here on a free port).

`HTTP_PROXY` carries plain-HTTP calls as absolute-form requests; `HTTPS_PROXY` tunnels with `CONNECT` and
the platform's certificate is still verified end to end, through the tunnel.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from pydantic import SecretStr

from bridge.config import Settings
from bridge.server import BridgeServer
from tests.e2e.harness import API_KEY, bridge_stack
from tests.e2e.recorder import recording_platform
from tests.ops.certs import Pki, make_pki
from xpander.bridge.v1 import events_pb2, task_service_pb2, task_service_pb2_grpc

pytestmark = pytest.mark.skipif(shutil.which("tinyproxy") is None, reason="make test installs tinyproxy")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A tinyproxy on 127.0.0.1: its URL and its log file."""
    port = _free_port()
    log = tmp_path / "tinyproxy.log"
    config = tmp_path / "tinyproxy.conf"
    config.write_text(
        f'Port {port}\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\nLogFile "{log}"\nLogLevel Info\n'
        "MaxClients 100\n"
    )
    process = subprocess.Popen(
        ["tinyproxy", "-d", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(500):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None:
                pytest.fail(f"tinyproxy exited with {process.returncode}: {log.read_text()}")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}", log
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _through(monkeypatch: pytest.MonkeyPatch, variable: str, url: str) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, url)


async def test_plain_http_calls_and_streams_go_through_the_proxy(
    proxy: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, log = proxy
    _through(monkeypatch, "HTTP_PROXY", url)
    async with bridge_stack() as stack:
        platform = stack.platform.url.removeprefix("http://")
        created = await stack.create("#chunks=3")
        messages = await stack.stream(created.task.id)
        assert messages[-1].event.type == events_pb2.TASK_EVENT_TYPE_TASK_FINISHED
        got = await stack.stub.GetTask(task_service_pb2.GetTaskRequest(task_id=created.task.id), timeout=5)
        assert got.task.id == created.task.id
    seen = log.read_text()
    assert f"POST http://{platform}/agent-execution/demo-agent" in seen
    assert f"/agent-execution/{created.task.id}/events" in seen
    assert f"/agent-execution/{created.task.id}/status" in seen


async def test_https_calls_tunnel_with_connect_and_verify_the_platform(
    proxy: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, pki: Pki
) -> None:
    url, log = proxy
    _through(monkeypatch, "HTTPS_PROXY", url)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server.cert, pki.server.key)
    async with recording_platform(ssl_context=context) as platform:
        answers: dict[str, object] = {}
        for name, bundle in (("trusted", pki.ca), ("wrong", pki.wrong_ca)):
            settings = Settings(
                listen="127.0.0.1:0",
                base_url=platform.url,
                api_key=SecretStr(API_KEY),
                upstream_ca_bundle=bundle,
            )
            async with BridgeServer(settings) as bridge, grpc.aio.insecure_channel(bridge.address) as channel:
                stub = task_service_pb2_grpc.TaskServiceStub(channel)
                try:
                    answers[name] = await stub.GetTask(
                        task_service_pb2.GetTaskRequest(task_id="t-px"), timeout=5
                    )
                except grpc.aio.AioRpcError as error:
                    answers[name] = error.code()
    trusted = answers["trusted"]
    assert isinstance(trusted, task_service_pb2.GetTaskResponse)
    assert trusted.task.id == "t-px"
    assert answers["wrong"] == grpc.StatusCode.UNAVAILABLE
    assert len(platform.headers) == 1
    assert f"CONNECT 127.0.0.1:{platform.url.rsplit(':', 1)[1]}" in log.read_text()

"""Fixtures: a bridge on the embedded local platform, as `make run` starts it, and the example clients built
from the committed stubs and run against it once per language."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.clients.facts import ExampleRun
from tests.clients.toolchain import GO_EXAMPLE, NODE_EXAMPLE, ROOT, go_env, require, run

LANGUAGES = ("node", "go")
_STARTUP_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def bridge_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`xpander-bridge serve --local-platform` in a child process; its output goes to a log file."""
    address = f"127.0.0.1:{_free_port()}"
    log_path = tmp_path_factory.mktemp("bridge") / "bridge.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "serve", "--local-platform", "--listen", address],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_serving(process, address, log_path)
        yield address
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_serving(process: subprocess.Popen[bytes], address: str, log_path: Path) -> None:
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    with grpc.insecure_channel(address) as channel:
        ready = grpc.channel_ready_future(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the bridge exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                ready.result(timeout=0.2)
            except grpc.FutureTimeoutError:
                continue
            return
        ready.cancel()
    log = log_path.read_text()
    pytest.fail(f"the bridge did not serve on {address} within {_STARTUP_TIMEOUT:.0f}s:\n{log}")


@pytest.fixture(scope="session")
def node_example() -> list[str]:
    """The Node example compiled by tsc (which also type-checks it against the generated stubs)."""
    node = require("node", "make node-deps")
    if not (NODE_EXAMPLE / "node_modules" / ".bin" / "tsc").exists():
        pytest.fail("examples/node has no node_modules: run `make node-deps`")
    run([require("npm", "make node-deps"), "run", "--silent", "build"], cwd=NODE_EXAMPLE)
    return [node, str(NODE_EXAMPLE / "dist" / "main.js")]


@pytest.fixture(scope="session")
def go_example(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The Go example built in GOPATH mode against Debian's grpc-go and protobuf-go sources."""
    go = require("go", "make go-deps")
    workdir = tmp_path_factory.mktemp("go")
    binary = workdir / "bridge-example"
    run([go, "build", "-o", binary, "."], cwd=GO_EXAMPLE, env=go_env(workdir / "gopath", os.environ))
    return [str(binary)]


@pytest.fixture(scope="session", params=LANGUAGES)
def example_run(request: pytest.FixtureRequest, bridge_address: str) -> ExampleRun:
    """One run of an example against the bridge; it must exit 0 and print only JSON lines."""
    language: str = request.param
    argv: list[str] = request.getfixturevalue(f"{language}_example")
    result = run([*argv, "--addr", bridge_address, "--api-key", "local-dev-key"], timeout=60.0)
    facts = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return ExampleRun(language, facts)

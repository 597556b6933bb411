"""Fixtures: a bridge on the embedded local platform, as `make run` starts it, and the example clients built
from the committed stubs and run against it once per language."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from bridge.server_cli import READY_MESSAGE
from tests.clients.facts import ExampleRun
from tests.clients.toolchain import GO_EXAMPLE, NODE_EXAMPLE, ROOT, go_env, require, run

LANGUAGES = ("node", "go")
_STARTUP_TIMEOUT = 30.0
# The line `serve` logs once it accepts calls: READY_MESSAGE, then the platform it talks to.
_READY = re.compile(re.escape(READY_MESSAGE).replace("%s", r"(\S+?)") + r", platform (\S+)")


@dataclass(frozen=True)
class Bridge:
    """A running bridge: its gRPC address and the URL of its embedded local platform."""

    address: str
    platform_url: str


class _ServeOutput(threading.Thread):
    """Reads the bridge's output to the end (so the pipe never fills), keeps it, and spots the ready line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        super().__init__(daemon=True)
        self._process = process
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.bridge: Bridge | None = None

    def run(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self.lines.append(line)
            match = _READY.search(line)
            if match and self.bridge is None:
                self.bridge = Bridge(address=match.group(1), platform_url=match.group(2))
                self.ready.set()
        self.ready.set()  # the process ended: whoever waits learns it now, not at the timeout


@pytest.fixture(scope="session")
def bridge() -> Iterator[Bridge]:
    """`xpander-bridge serve --local-platform` as `make run` starts it, on a port the system picks."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge", "serve", "--local-platform", "--listen", "127.0.0.1:0"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = _ServeOutput(process)
    output.start()
    try:
        output.ready.wait(_STARTUP_TIMEOUT)
        if output.bridge is None:
            pytest.fail(
                f"the bridge did not report ready within {_STARTUP_TIMEOUT:.0f}s:\n{''.join(output.lines)}"
            )
        yield output.bridge
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.join(timeout=5)


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
def example_run(request: pytest.FixtureRequest, bridge: Bridge) -> ExampleRun:
    """One run of an example against the bridge; it must exit 0 and print only JSON lines.

    The platform is made to answer the example's first listing of the user's tasks with 503 and a
    Retry-After, so the run shows UNAVAILABLE with RetryInfo, and the retry that follows it.
    """
    language: str = request.param
    argv: list[str] = request.getfixturevalue(f"{language}_example")
    fault = {"route": "list_user_tasks", "status": 503, "times": 1, "retry_after": 1}
    httpx.post(f"{bridge.platform_url}/_local/faults", json=fault, timeout=10.0).raise_for_status()
    result = run([*argv, "--addr", bridge.address, "--api-key", "local-dev-key"], timeout=60.0)
    facts = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return ExampleRun(language, facts)

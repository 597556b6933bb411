"""`xpander-bridge serve` as a process, as `make run` starts it, called by the example client and buf curl."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SECRET = "sk-cli-secret-value-123"
READY = re.compile(r"xpander-bridge ready on (\S+?),")


@dataclass
class Served:
    """A running `xpander-bridge serve` process and the address it reported."""

    process: asyncio.subprocess.Process
    address: str
    log: list[str]


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XPANDER_", "BRIDGE_"))}
    return {**env, **extra}


async def read_until_ready(process: asyncio.subprocess.Process, log: list[str]) -> str:
    assert process.stderr is not None
    async with asyncio.timeout(20):
        while line := (await process.stderr.readline()).decode():
            log.append(line)
            if match := READY.search(line):
                return match.group(1)
    raise AssertionError("serve exited before it was ready:\n" + "".join(log))


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    """`xpander-bridge serve --local-platform` on a free port, with a key in the environment."""
    process = await asyncio.create_subprocess_exec(
        str(BIN / "xpander-bridge"),
        "serve",
        "--local-platform",
        "--listen",
        "127.0.0.1:0",
        stderr=asyncio.subprocess.PIPE,
        env=environment(XPANDER_API_KEY=SECRET, BRIDGE_SHUTDOWN_GRACE="2"),
    )
    log: list[str] = []
    try:
        address = await read_until_ready(process, log)
        yield Served(process, address, log)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                await process.wait()


async def run(*command: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT, env=environment()
    )
    async with asyncio.timeout(60):
        stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_example_client_and_shutdown_on_sigterm(served: Served) -> None:
    code, out, err = await run(sys.executable, "examples/python_client.py", "--address", served.address)
    assert code == 0, err
    assert "TASK_EVENT_TYPE_TASK_FINISHED" in out
    assert "is TASK_STATUS_COMPLETED" in out
    assert "demo-agent has 1 task(s)" in out

    served.process.send_signal(signal.SIGTERM)
    assert served.process.stderr is not None
    async with asyncio.timeout(10):
        rest = (await served.process.stderr.read()).decode()
        assert await served.process.wait() == 0
    served.log.append(rest)
    assert "stopped" in rest
    assert SECRET not in "".join(served.log)


@pytest.mark.skipif(shutil.which("buf", path=str(BIN)) is None, reason="buf (buf-bin) is not installed")
async def test_buf_curl_through_reflection(served: Served) -> None:
    buf = str(BIN / "buf")
    url = f"http://{served.address}"
    code, out, err = await run(
        buf, "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-services", url
    )
    assert code == 0, err
    assert "xpander.bridge.v1.TaskService" in out.split()
    body = json.dumps({"agent_id": "demo-agent", "prompt": "hello from buf", "events_streaming": True})
    code, out, err = await run(
        buf,
        "curl",
        "--protocol",
        "grpc",
        "--reflect-protocol",
        "grpc-v1",
        "-d",
        body,
        f"{url}/xpander.bridge.v1.TaskService/CreateTask",
    )
    assert code == 0, err
    task_id = json.loads(out)["task"]["id"]
    code, out, err = await run(
        buf,
        "curl",
        "--protocol",
        "grpc",
        "-d",
        json.dumps({"task_id": task_id}),
        f"{url}/xpander.bridge.v1.TaskService/StreamEvents",
    )
    assert code == 0, err
    assert out.count('"sequence"') >= 5
    assert "TASK_EVENT_TYPE_TASK_FINISHED" in out


async def test_bad_settings_exit_2_naming_the_setting() -> None:
    code, _, err = await run(
        str(BIN / "xpander-bridge"), "serve", "--base-url", "ftp://nowhere", "--listen", "x"
    )
    assert code == 2
    assert "base_url" in err
    assert "listen" in err

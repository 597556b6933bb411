"""`LocalPlatform`'s lifecycle and the `local-platform` command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from bridge.localplatform import LocalPlatform
from bridge.localplatform.cli import add_arguments, parse_listen

ROOT = Path(__file__).resolve().parents[2]


async def test_url_and_organization() -> None:
    platform = LocalPlatform(organization_id="acme")
    assert platform.organization_id == "acme"
    with pytest.raises(RuntimeError):
        _ = platform.url
    async with platform:
        assert platform.url.startswith("http://127.0.0.1:")
        assert not platform.url.endswith("/")
        async with httpx.AsyncClient(base_url=platform.url) as http:
            assert (await http.get("/acme/agents/list")).json()[0]["organization_id"] == "acme"
            assert (await http.get("/local-org/agents/list")).status_code == 403
        with pytest.raises(RuntimeError):
            await platform.start()
    with pytest.raises(RuntimeError):
        _ = platform.url
    await platform.stop()  # stopping twice is harmless


async def test_restart_on_the_same_object_starts_empty() -> None:
    platform = LocalPlatform()
    for _ in range(2):
        await platform.start()
        async with httpx.AsyncClient(base_url=platform.url) as http:
            assert (await http.get("/_local/stats")).json()["tasks"] == 0
            await http.post("/agent-execution/demo-agent", json={"input": {"text": "#never"}})
        await platform.stop()


async def test_ipv6_url_has_brackets() -> None:
    platform = LocalPlatform()
    try:
        await platform.start("::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert platform.url.startswith("http://[::1]:")
        async with httpx.AsyncClient(base_url=platform.url) as http:
            assert (await http.get("/agents/list")).status_code == 200
    finally:
        await platform.stop()


async def test_a_busy_port_fails_to_start_and_leaves_nothing_running() -> None:
    async with LocalPlatform() as first:
        port = int(first.url.rsplit(":", 1)[1])
        second = LocalPlatform()
        with pytest.raises(OSError, match="address already in use"):
            await second.start(port=port)
        with pytest.raises(RuntimeError):
            _ = second.url


@pytest.mark.parametrize(
    "kwargs",
    [
        {"organization_id": ""},
        {"organization_id": "a/b"},
        {"keepalive_interval": 0},
        {"step_delay": -1},
        {"max_finished_tasks": 0},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must"):
        LocalPlatform(**kwargs)  # type: ignore[arg-type]


def test_a_single_key_string_is_refused() -> None:
    with pytest.raises(TypeError):
        LocalPlatform(api_keys="abc")


@pytest.mark.parametrize(
    ("listen", "expected"),
    [("127.0.0.1:9016", ("127.0.0.1", 9016)), ("[::1]:0", ("::1", 0)), ("localhost:80", ("localhost", 80))],
)
def test_parse_listen(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["9016", ":9016", "host:", "host:port"])
def test_parse_listen_refuses(listen: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(listen)


def test_flags_and_defaults() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    defaults = parser.parse_args([])
    assert (defaults.listen, defaults.organization_id, defaults.api_keys) == (
        "127.0.0.1:9016",
        "local-org",
        [],
    )
    assert (defaults.keepalive_interval, defaults.step_delay, defaults.max_finished_tasks) == (
        15.0,
        0.05,
        10_000,
    )
    args = parser.parse_args(
        ["--api-key", "a", "--api-key", "b", "--step-delay", "0", "--max-finished-tasks", "5"]
    )
    assert (args.api_keys, args.step_delay, args.max_finished_tasks) == (["a", "b"], 0.0, 5)


# The subcommand module, run the way `bridge/cli.py` dispatches it, in a process of its own.
_RUN_CLI = """
import argparse, sys
from bridge.localplatform import cli
parser = argparse.ArgumentParser()
cli.add_arguments(parser)
sys.exit(cli.main(parser.parse_args(sys.argv[1:])))
"""


async def _start_cli(*args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", _RUN_CLI, *args, cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )


@pytest.mark.parametrize(("signum", "loop_flags"), [(signal.SIGTERM, []), (signal.SIGINT, ["--no-uvloop"])])
async def test_cli_logs_its_url_serves_and_stops_on_signal(
    signum: signal.Signals, loop_flags: list[str]
) -> None:
    flags = ["--listen", "127.0.0.1:0", "--api-key", "k", "--organization-id", "cli-org", *loop_flags]
    process = await _start_cli(*flags)
    assert process.stderr is not None
    async with asyncio.timeout(20):
        line = (await process.stderr.readline()).decode()
    assert "local platform ready at http://127.0.0.1:" in line
    assert "cli-org" in line
    url = line.split(" ready at ")[1].split()[0]
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": "k"}) as http:
        created = await http.post("/agent-execution/demo-agent", json={"input": {"text": "#never"}})
        assert created.status_code == 200
        assert (await http.get("/agents/list", headers={"x-api-key": "bad"})).status_code == 403
    process.send_signal(signum)
    async with asyncio.timeout(10):
        assert await process.wait() == 0


async def test_cli_exit_codes_for_bad_input() -> None:
    bad_listen = await _start_cli("--listen", "nowhere")
    async with asyncio.timeout(20):
        assert await bad_listen.wait() == 2
    async with LocalPlatform() as busy:
        taken = busy.url.removeprefix("http://")
        occupied = await _start_cli("--listen", taken)
        async with asyncio.timeout(20):
            assert await occupied.wait() == 1

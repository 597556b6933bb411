"""`xpander-bridge serve` as a process: the start-up refusal, two workers on one port and one local platform,
and no secret in any line of a JSON log at DEBUG."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.processes import alive, environment, run_serve, serve_process
from xpander.bridge.v1 import task_pb2, task_service_pb2, task_service_pb2_grpc

Request = task_service_pb2
SERVICE = "xpander.bridge.v1.TaskService"
KEY = "sk-default-key-1234567890"
TOKEN = "bridge-token-abcdef0123456789"
WRONG_TOKEN = "not-the-bridge-token-42"
CALL_KEY = "sk-call-key-0123456789"
OIDC = "oidc-secret-token-abcdef"
USER_TOKEN = "user-token-secret-987654"
MCP_KEY = "mcp-secret-key-555555"
SECRETS = (KEY, TOKEN, WRONG_TOKEN, CALL_KEY, OIDC, USER_TOKEN, MCP_KEY)


def address_of(ready: dict[str, Any]) -> str:
    return str(ready["message"]).split(" ready on ", 1)[1].split(",", 1)[0]


def platform_of(ready: dict[str, Any]) -> str:
    match = re.search(r"platform (http://[^\s,]+)", str(ready["message"]))
    assert match is not None
    return match.group(1)


def fresh_channel(address: str) -> grpc.aio.Channel:
    # A channel of its own opens its own connection, which the kernel may give to either worker.
    return grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])


async def test_serve_refuses_to_lend_its_key_on_an_open_address() -> None:
    code, err = await run_serve("--listen", "0.0.0.0:0", env=environment(XPANDER_API_KEY=KEY))
    assert code == 2
    assert "refusing to serve on 0.0.0.0 with a default platform key" in err
    assert "--allow-unauthenticated" in err
    assert KEY not in err

    env = environment(XPANDER_API_KEY=KEY, BRIDGE_LOG_FORMAT="json")
    async with serve_process(
        "--local-platform", "--listen", "0.0.0.0:0", "--allow-unauthenticated", env=env
    ) as served:
        (ready,) = await served.ready()
        port = address_of(ready).rpartition(":")[2]
        async with fresh_channel(f"127.0.0.1:{port}") as channel:
            stub = task_service_pb2_grpc.TaskServiceStub(channel)
            created = await stub.CreateTask(Request.CreateTaskRequest(agent_id="demo-agent"), timeout=5)
        assert created.task.id
        assert await served.stop() == 0


async def worker_counts(metrics_urls: dict[int, str]) -> dict[int, tuple[float, float]]:
    """Per worker: (CreateTask OK, StreamEvents OK) from its own /metrics."""
    counts = {}
    async with httpx.AsyncClient() as client:
        for worker, url in metrics_urls.items():
            text = (await client.get(url, timeout=5)).text
            samples = {
                (sample.name, sample.labels.get("method"), sample.labels.get("code")): sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            }
            counts[worker] = (
                samples.get(("bridge_grpc_requests_total", "CreateTask", "OK"), 0.0),
                samples.get(("bridge_grpc_requests_total", "StreamEvents", "OK"), 0.0),
            )
    return counts


def changed(before: dict[int, tuple[float, float]], after: dict[int, tuple[float, float]], at: int) -> int:
    (worker,) = [w for w in after if after[w][at] != before[w][at]]
    return worker


async def test_two_workers_share_one_port_and_one_local_platform_and_stop_on_sigterm() -> None:
    flags = (
        "--workers",
        "2",
        "--local-platform",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    )
    env = environment(BRIDGE_LOG_FORMAT="json", BRIDGE_SHUTDOWN_GRACE="2")
    async with serve_process(*flags, env=env) as served:
        ready = await served.ready(2)
        (address,) = {address_of(record) for record in ready}
        worker_pids = {int(record["pid"]) for record in ready}
        assert len(worker_pids) == 2
        metrics_urls = {int(record["worker"]): str(record["metrics"]) for record in ready}
        assert sorted(metrics_urls) == [0, 1]
        (platform_pid,) = [
            int(r["pid"]) for r in served.records() if str(r["message"]).startswith("local platform ready")
        ]
        assert platform_pid not in worker_pids

        creators: set[int] = set()
        streamers: set[int] = set()
        crossed = False
        for _ in range(40):
            before = await worker_counts(metrics_urls)
            async with fresh_channel(address) as channel:
                stub = task_service_pb2_grpc.TaskServiceStub(channel)
                created = await stub.CreateTask(
                    Request.CreateTaskRequest(
                        agent_id="demo-agent", prompt="#delay=0", events_streaming=True
                    ),
                    timeout=5,
                )
            middle = await worker_counts(metrics_urls)
            async with fresh_channel(address) as channel:
                stub = task_service_pb2_grpc.TaskServiceStub(channel)
                stream = stub.StreamEvents(Request.StreamEventsRequest(task_id=created.task.id), timeout=10)
                events = [message.event async for message in stream]
            after = await worker_counts(metrics_urls)
            assert events[-1].type_name == "task_finished"
            creator, streamer = changed(before, middle, 0), changed(middle, after, 1)
            creators.add(creator)
            streamers.add(streamer)
            # A task created through one worker streams through the other: they share one platform.
            crossed = crossed or creator != streamer
            if crossed and len(creators | streamers) == 2:
                break
        assert crossed
        assert creators | streamers == {0, 1}

        assert await served.stop() == 0
        stopped = [r for r in served.records() if r["message"] == "stopped"]
    assert len(stopped) == 2
    assert not [pid for pid in (*worker_pids, platform_pid) if alive(pid)]


def user_tokens() -> struct_pb2.Struct:
    value = struct_pb2.Struct()
    value.update({"github": USER_TOKEN})
    return value


async def expect_failure(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call
    return failure.value.code()


async def inject(platform: httpx.AsyncClient, **fault: Any) -> None:
    (await platform.post("/_local/faults", json=fault)).raise_for_status()


async def fault_then_fail(
    platform: httpx.AsyncClient, route: str, make_call: Callable[[], Any]
) -> grpc.StatusCode:
    """The code of the call `make_call` starts once the platform is told to answer `route` with 500."""
    await inject(platform, route=route, status=500)
    return await expect_failure(make_call())


async def test_no_secret_reaches_any_log_line_of_serve_with_json_logs_at_debug() -> None:
    env = environment(
        XPANDER_API_KEY=KEY, BRIDGE_TOKENS=f"ci:{TOKEN}", BRIDGE_SHUTDOWN_GRACE="2", BRIDGE_LOG_LEVEL="DEBUG"
    )
    flags = ("--local-platform", "--listen", "127.0.0.1:0", "--log-format", "json")
    async with serve_process(*flags, env=env) as served:
        (ready,) = await served.ready()
        async with (
            grpc.aio.insecure_channel(address_of(ready)) as channel,
            httpx.AsyncClient(base_url=platform_of(ready)) as platform,
        ):
            stub = task_service_pb2_grpc.TaskServiceStub(channel)
            token = (("x-bridge-token", TOKEN),)
            mcp = task_pb2.MCPServerDetails(
                name="search",
                type=task_pb2.MCP_SERVER_TYPE_REMOTE,
                url="https://mcp.example.com/mcp",
                auth_type=task_pb2.MCP_SERVER_AUTH_TYPE_API_KEY,
                api_key=MCP_KEY,
            )
            created = await stub.CreateTask(
                Request.CreateTaskRequest(
                    agent_id="demo-agent",
                    prompt="#delay=0.001",
                    events_streaming=True,
                    user_oidc_token=OIDC,
                    user_tokens=user_tokens(),
                    mcp_servers=[mcp],
                ),
                metadata=token,
                timeout=5,
            )
            task_id = created.task.id
            (
                await platform.post("/_local/faults", json={"route": "task_events", "drop_after_events": 2})
            ).raise_for_status()
            streamed = stub.StreamEvents(
                Request.StreamEventsRequest(task_id=task_id), metadata=token, timeout=10
            )
            assert [m.event.type_name async for m in streamed][-1] == "task_finished"
            own_key = (("x-api-key", CALL_KEY),)
            assert (await stub.GetTask(Request.GetTaskRequest(task_id=task_id), metadata=own_key)).task.id
            read = Request.GetTaskRequest(task_id=task_id)
            wrong = (("x-bridge-token", WRONG_TOKEN),)
            bearer = (("authorization", f"Bearer {CALL_KEY}"),)
            invalid = Request.CreateTaskRequest(agent_id="a/b", user_oidc_token=OIDC, mcp_servers=[mcp])
            codes = [
                await expect_failure(stub.GetTask(read)),
                await expect_failure(stub.GetTask(read, metadata=wrong)),
                await fault_then_fail(platform, "get_task", lambda: stub.GetTask(read, metadata=bearer)),
                await expect_failure(stub.CreateTask(invalid, metadata=token)),
            ]
            assert codes == [
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.INTERNAL,
                grpc.StatusCode.INVALID_ARGUMENT,
            ]
        assert await served.stop() == 0
        lines, records = served.lines, served.records()

    assert any(record["level"] == "debug" for record in records), "DEBUG lines were expected"
    access = [record for record in records if record["logger"] == "bridge.access"]
    assert len(access) == 7
    assert {record["caller"] for record in access if record["code"] == "OK"} == {"token:ci", "platform-key"}
    assert all(record["request_id"] for record in access)
    assert any("reconnecting" in record["message"] for record in records)
    for secret in SECRETS:
        assert not [line for line in lines if secret in line], secret

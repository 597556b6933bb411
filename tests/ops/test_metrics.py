"""Metrics: a scripted set of calls, then a scrape of the /metrics endpoint over HTTP."""

from __future__ import annotations

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.ops.metrics import BridgeMetrics, MetricsServer
from bridge.ops.upstream import ROUTE_EXTENSION, upstream_transport
from tests.ops.support import FixedTaskService, start_server, start_upstream, stub
from xpander.bridge.v1 import events_pb2, task_service_pb2

SERVICE = "xpander.bridge.v1.TaskService"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


async def test_scraped_metrics_count_calls_streams_events_and_upstream_requests() -> None:
    metrics = BridgeMetrics()
    upstream_ok = await start_upstream(200)
    upstream_down = await start_upstream(503)
    async with (
        httpx.AsyncClient(
            base_url=upstream_ok.url, transport=upstream_transport(metrics=metrics)
        ) as ok_client,
        httpx.AsyncClient(
            base_url=upstream_down.url, transport=upstream_transport(metrics=metrics)
        ) as down_client,
    ):
        served_ok = await start_server(
            interceptors=[metrics.interceptor()], service=FixedTaskService(upstream=ok_client)
        )
        served_down = await start_server(
            interceptors=[metrics.interceptor()], service=FixedTaskService(upstream=down_client)
        )
        exporter = MetricsServer(metrics)
        await exporter.start("127.0.0.1", 0)
        try:
            async with (
                grpc.aio.insecure_channel(served_ok.address) as channel,
                grpc.aio.insecure_channel(served_down.address) as down_channel,
            ):
                tasks = stub(channel)
                await tasks.GetTask(task_service_pb2.GetTaskRequest(task_id="t-1"))
                await tasks.GetTask(task_service_pb2.GetTaskRequest(task_id="t-2"))
                with pytest.raises(grpc.aio.AioRpcError) as missing:
                    await tasks.GetTask(task_service_pb2.GetTaskRequest(task_id="missing"))
                assert missing.value.code() == grpc.StatusCode.NOT_FOUND
                events = [
                    e async for e in tasks.StreamEvents(task_service_pb2.StreamEventsRequest(task_id="t-1"))
                ]
                assert len(events) == 4
                await tasks.GetTask(task_service_pb2.GetTaskRequest(task_id="upstream"))
                await stub(down_channel).GetTask(task_service_pb2.GetTaskRequest(task_id="upstream"))
            metrics.record_upstream_reconnect()

            async with httpx.AsyncClient() as scraper:
                response = await scraper.get(f"http://127.0.0.1:{exporter.port}/metrics")
        finally:
            await exporter.stop()
            await served_ok.server.stop(None)
            await served_down.server.stop(None)
            await upstream_ok.runner.cleanup()
            await upstream_down.runner.cleanup()

    assert response.status_code == 200
    scraped = samples(response.text)
    requests = "bridge_grpc_requests_total"
    assert value(scraped, requests, service=SERVICE, method="GetTask", code="OK") == 4
    assert value(scraped, requests, service=SERVICE, method="GetTask", code="NOT_FOUND") == 1
    assert value(scraped, requests, service=SERVICE, method="StreamEvents", code="OK") == 1
    assert (
        value(scraped, "bridge_grpc_request_duration_seconds_count", service=SERVICE, method="GetTask") == 5
    )
    assert value(scraped, "bridge_grpc_open_streams", service=SERVICE, method="StreamEvents") == 0
    assert value(scraped, "bridge_grpc_calls_in_flight") == 0
    assert value(scraped, "bridge_events_forwarded_total", type="task_created") == 1
    assert value(scraped, "bridge_events_forwarded_total", type="chunk") == 2
    assert value(scraped, "bridge_heartbeats_sent_total") == 1
    assert value(scraped, "bridge_upstream_requests_total", route="get_task", status="200") == 1
    assert value(scraped, "bridge_upstream_requests_total", route="get_task", status="503") == 1
    assert value(scraped, "bridge_upstream_request_duration_seconds_count", route="get_task") == 2
    assert value(scraped, "bridge_upstream_reconnects_total", route="task_events") == 1


async def test_open_streams_gauge_counts_a_stream_while_it_is_open() -> None:
    metrics = BridgeMetrics()
    served = await start_server(interceptors=[metrics.interceptor()])
    try:
        async with grpc.aio.insecure_channel(served.address) as channel:
            call = stub(channel).StreamEvents(task_service_pb2.StreamEventsRequest(task_id="block"))
            await served.service.entered.get()
            open_now = samples(metrics.exposition().decode())
            call.cancel()
            with pytest.raises(BaseException):  # noqa: B017, PT011 - cancelled stream
                await call.read()
    finally:
        await served.server.stop(None)
    assert value(open_now, "bridge_grpc_open_streams", service=SERVICE, method="StreamEvents") == 1
    after = samples(metrics.exposition().decode())
    assert value(after, "bridge_grpc_open_streams", service=SERVICE, method="StreamEvents") == 0
    assert (
        value(after, "bridge_grpc_requests_total", service=SERVICE, method="StreamEvents", code="CANCELLED")
        == 1
    )


async def test_upstream_transport_failures_are_counted_as_errors() -> None:
    metrics = BridgeMetrics()
    # A port nothing listens on: the connection is refused, no response comes.
    async with httpx.AsyncClient(transport=upstream_transport(metrics=metrics)) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("http://127.0.0.1:9/tasks/x", extensions={ROUTE_EXTENSION: "get_task"})
        with pytest.raises(httpx.ConnectError):
            await client.get("http://127.0.0.1:9/whatever/x")
    scraped = samples(metrics.exposition().decode())
    assert value(scraped, "bridge_upstream_requests_total", route="get_task", status="error") == 1
    assert value(scraped, "bridge_upstream_requests_total", route="other", status="error") == 1


def test_each_instance_has_its_own_registry() -> None:
    first, second = BridgeMetrics(), BridgeMetrics()
    first.record_upstream("get_task", 200, 0.01)
    assert (
        value(
            samples(second.exposition().decode()),
            "bridge_upstream_requests_total",
            route="get_task",
            status="200",
        )
        == 0
    )


def test_counts_accumulate_per_event_type_and_upstream_route() -> None:
    metrics = BridgeMetrics()
    for _ in range(2):
        for event_type in (events_pb2.TASK_EVENT_TYPE_CHUNK, 999):  # 999: a number the enum does not name
            event = events_pb2.TaskEvent(type=event_type)  # type: ignore[arg-type]
            metrics.record_stream_message(task_service_pb2.StreamEventsResponse(event=event))
        metrics.record_upstream("get_task", 200, 0.01)
        metrics.record_upstream("get_task", "error", 0.01)
    scraped = samples(metrics.exposition().decode())
    assert value(scraped, "bridge_events_forwarded_total", type="chunk") == 2
    assert value(scraped, "bridge_events_forwarded_total", type="unknown") == 2
    assert value(scraped, "bridge_upstream_requests_total", route="get_task", status="200") == 2
    assert value(scraped, "bridge_upstream_requests_total", route="get_task", status="error") == 2
    assert value(scraped, "bridge_upstream_request_duration_seconds_count", route="get_task") == 4

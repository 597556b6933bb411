"""PlatformClient against httpx's MockTransport: URLs, headers, error mapping, retries, the SSE reader."""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from bridge.credentials import Credentials
from bridge.errors import (
    BridgeError,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from bridge.platform.client import ROUTE_EXTENSION, PlatformClient

CREDS = Credentials(api_key="k-1", organization_id="org-1")
TASK = {
    "id": "t1",
    "agent_id": "a1",
    "organization_id": "org-1",
    "input": {},
    "created_at": "2026-01-01T00:00:00Z",
}

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, *, base_url: str = "http://platform.test", **options: Any) -> PlatformClient:
    transport = httpx.MockTransport(handler)
    return PlatformClient(
        base_url=base_url,
        events_base_url=options.pop("events_base_url", base_url),
        org_in_rest_path=options.pop("org_in_rest_path", False),
        transport=transport,
        stream_transport=transport,
        **options,
    )


def json_answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


async def test_requests_carry_key_route_and_paths() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return json_answer([] if "history" in request.url.path else TASK)

    async with client(handler, org_in_rest_path=True) as platform:
        await platform.create_task("a1", {"input": {"text": "hi"}}, {"x-agent-version": "3"}, CREDS)
        await platform.get_task("t1", CREDS)
        await platform.stop_task("t1", CREDS)
        await platform.list_tasks(
            "agent-execution/executions/history/user/u1", {"status": "completed"}, CREDS
        )
    assert [(r.method, r.url.path, r.extensions[ROUTE_EXTENSION]) for r in seen] == [
        ("POST", "/org-1/agent-execution/a1", "create_task"),
        ("GET", "/org-1/agent-execution/t1/status", "get_task"),
        ("DELETE", "/org-1/agent-execution/t1", "stop_task"),
        ("GET", "/org-1/agent-execution/executions/history/user/u1", "list_user_tasks"),
    ]
    assert all(r.headers["x-api-key"] == "k-1" for r in seen)
    assert seen[0].headers["x-agent-version"] == "3"
    assert seen[0].headers["content-type"] == "application/json"
    assert seen[0].content == b'{"input":{"text":"hi"}}'
    assert seen[1].content == b""
    assert seen[3].url.params["status"] == "completed"


async def test_org_in_path_needs_an_organization() -> None:
    async with client(lambda r: json_answer(TASK), org_in_rest_path=True) as platform:
        with pytest.raises(Unauthenticated, match="organization"):
            await platform.get_task("t1", Credentials(api_key="k", organization_id=None))


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"detail": "Task not found"}, "Task not found"),
        (
            {"detail": [{"loc": ["body", "input", "text"], "msg": "field required"}]},
            "body.input.text: field required",
        ),
        ({"error": "boom"}, "boom"),
    ],
)
async def test_error_detail_is_quoted(body: dict[str, Any], detail: str) -> None:
    async with client(lambda r: json_answer(body, 404)) as platform:
        with pytest.raises(NotFound) as error:
            await platform.get_task("t1", CREDS)
    assert detail in error.value.message
    assert error.value.metadata == {"http_status": "404", "route": "get_task"}


async def test_non_json_error_body_is_quoted_as_text() -> None:
    async with client(lambda r: httpx.Response(422, text="<h1>bad</h1>")) as platform:
        with pytest.raises(InvalidArgument, match="<h1>bad</h1>"):
            await platform.get_task("t1", CREDS)


async def test_retry_after_seconds_and_http_date() -> None:
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    answers = iter([("2", 429), (future, 503)])

    def handler(request: httpx.Request) -> httpx.Response:
        value, status = next(answers)
        return json_answer({"detail": "slow down"}, status, {"Retry-After": value})

    async with client(handler) as platform:
        with pytest.raises(ResourceExhausted) as limited:
            await platform.get_task("t1", CREDS)
        with pytest.raises(Unavailable) as overloaded:
            await platform.get_task("t1", CREDS)
    assert limited.value.retry_after == 2.0
    assert overloaded.value.retry_after is not None
    assert 25 < overloaded.value.retry_after <= 30


@pytest.mark.parametrize(
    ("response", "problem"),
    [
        (httpx.Response(200, text="<html>", headers={"content-type": "text/html"}), "text/html"),
        (
            httpx.Response(200, content=b"{nope", headers={"content-type": "application/json"}),
            "not valid JSON",
        ),
        (httpx.Response(200, json=[1, 2]), "expected a JSON object, got an array"),
    ],
)
async def test_unreadable_answers_are_internal_naming_the_route(
    response: httpx.Response, problem: str
) -> None:
    async with client(lambda r: response) as platform:
        with pytest.raises(Internal) as error:
            await platform.stop_task("t1", CREDS)
    assert "stop_task" in error.value.message
    assert problem in error.value.message
    assert error.value.metadata["route"] == "stop_task"


async def test_list_must_be_an_array() -> None:
    async with client(lambda r: json_answer({"items": []})) as platform:
        with pytest.raises(Internal, match="list_tasks"):
            await platform.list_tasks("agent-execution/executions/history/a1", {}, CREDS)


def failing_then(error: Exception, failures: int) -> tuple[Handler, list[str]]:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) <= failures:
            raise error
        return json_answer(TASK)

    return handler, calls


async def test_reads_are_retried_when_the_connection_could_not_be_opened() -> None:
    handler, calls = failing_then(httpx.ConnectError("refused"), failures=2)
    async with client(handler, read_retries=2) as platform:
        assert (await platform.get_task("t1", CREDS))["id"] == "t1"
    assert calls == ["GET", "GET", "GET"]


async def test_retries_are_bounded() -> None:
    handler, calls = failing_then(httpx.ConnectError("refused"), failures=10)
    async with client(handler, read_retries=1) as platform:
        with pytest.raises(Unavailable, match="could not connect"):
            await platform.get_task("t1", CREDS)
    assert len(calls) == 2


@pytest.mark.parametrize("method", ["create", "stop"])
async def test_create_and_stop_are_never_retried(method: str) -> None:
    handler, calls = failing_then(httpx.ConnectError("refused"), failures=1)
    async with client(handler, read_retries=3) as platform:
        call = (
            platform.create_task("a1", {}, {}, CREDS)
            if method == "create"
            else platform.stop_task("t1", CREDS)
        )
        with pytest.raises(Unavailable):
            await call
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (httpx.ReadTimeout("slow"), DeadlineExceeded),
        (httpx.PoolTimeout("busy"), DeadlineExceeded),
        (httpx.RemoteProtocolError("peer closed"), Unavailable),
        (httpx.ReadError("reset"), Unavailable),
        (httpx.ConnectTimeout("slow connect"), Unavailable),
        (httpx.UnsupportedProtocol("gopher"), Internal),
    ],
)
async def test_transport_failures_map_by_meaning(error: Exception, expected: type[BridgeError]) -> None:
    handler, _ = failing_then(error, failures=10)
    async with client(handler, read_retries=0) as platform:
        with pytest.raises(expected) as raised:
            await platform.stop_task("t1", CREDS)
    assert raised.value.metadata["route"] == "stop_task"
    assert "k-1" not in raised.value.message


async def test_no_budget_left_is_deadline_exceeded_without_a_request() -> None:
    handler, calls = failing_then(httpx.ConnectError("x"), failures=0)
    async with client(handler) as platform:
        with pytest.raises(DeadlineExceeded):
            await platform.get_task("t1", CREDS, budget=0)
    assert calls == []


async def test_redirects_are_not_followed() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(307, headers={"location": "http://elsewhere.test/"})

    async with client(handler) as platform:
        with pytest.raises(BridgeError):
            await platform.get_task("t1", CREDS)
    assert seen == ["http://platform.test/agent-execution/t1/status"]


async def test_requests_carry_a_user_agent_and_ids_stay_quoted() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return json_answer(TASK)

    async with client(handler, org_in_rest_path=True) as platform:
        for _ in range(2):  # the second time from the parsed-URL cache
            await platform.create_task("a 1/é", {}, {"accept": "application/json"}, CREDS, budget=7)
        await platform.get_task("t?1", CREDS)
    first, second, get = seen
    assert first.url.raw_path == second.url.raw_path == b"/org-1/agent-execution/a%201%2F%C3%A9"
    assert get.url.raw_path == b"/org-1/agent-execution/t%3F1/status"
    assert first.headers.get_list("accept") == ["application/json"]
    assert first.headers["host"] == "platform.test"
    assert first.headers["content-length"] == "2"
    assert first.headers["user-agent"].startswith("xpander-bridge/")
    assert get.headers["accept-encoding"] == "gzip, deflate"
    assert first.extensions["timeout"] == {"connect": 5.0, "read": 7, "write": 7, "pool": 7}


class Tracked(httpx.AsyncByteStream):
    """A response body that remembers being closed."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.body

    async def aclose(self) -> None:
        self.closed = True


async def test_responses_are_read_and_closed_and_the_transport_closed_at_the_end() -> None:
    bodies: list[Tracked] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(Tracked(b'{"id": "t1"}'))
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=bodies[-1])

    closed: list[str] = []

    class Transport(httpx.MockTransport):
        async def aclose(self) -> None:
            closed.append("closed")

    platform = PlatformClient(
        base_url="http://platform.test",
        events_base_url="http://platform.test",
        org_in_rest_path=False,
        transport=Transport(handler),
        stream_transport=Transport(handler),
    )
    assert (await platform.get_task("t1", CREDS))["id"] == "t1"
    assert bodies[0].closed
    await platform.aclose()
    assert closed == ["closed", "closed"]


async def test_platform_cookies_are_not_sent_back() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return json_answer(TASK, headers={"set-cookie": "session=someone-elses"})

    async with client(handler) as platform:
        await platform.get_task("t1", CREDS)
        await platform.get_task("t1", CREDS)
    assert "cookie" not in seen[1].headers


# --- Event stream ----------------------------------------------------------------------------------------


class Body(httpx.AsyncByteStream):
    """A response body sent in the given pieces."""

    def __init__(self, *pieces: bytes) -> None:
        self._pieces = pieces

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            yield piece


def sse(*pieces: bytes, status: int = 200, content_type: str = "text/event-stream") -> httpx.Response:
    return httpx.Response(status, headers={"content-type": content_type}, stream=Body(*pieces))


async def read_events(platform: PlatformClient, **options: Any) -> list[tuple[int, dict[str, Any]]]:
    async with platform.stream_events("t1", CREDS, **options) as events:
        return [item async for item in events]


async def test_stream_url_headers_and_numbered_events() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return sse(
            b'id: 4\ndata: {"type":"chunk"', b',"data":"a"}\n\n: keepalive\n\nid: 5\ndata: {"type":"x"}\n\n'
        )

    async with client(handler, events_base_url="http://events.test") as platform:
        assert await read_events(platform, last_event_id=3) == [
            (4, {"type": "chunk", "data": "a"}),
            (5, {"type": "x"}),
        ]
    request = seen[0]
    assert str(request.url) == "http://events.test/org-1/agent-execution/t1/events"
    assert request.headers["last-event-id"] == "3"
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["x-api-key"] == "k-1"


async def test_events_without_ids_are_counted_and_bad_data_skipped() -> None:
    body = b'data: {"n":1}\n\ndata: not json\n\ndata: [1]\n\ndata: {"n":4}\n\n'
    async with client(lambda r: sse(body)) as platform, platform.stream_events("t1", CREDS) as events:
        items = [item async for item in events]
        assert not events.numeric_ids
    assert items == [(1, {"n": 1}), (4, {"n": 4})]


async def test_stream_errors() -> None:
    answers = iter(
        [json_answer({"detail": "no such task"}, 404), sse(b"{}", content_type="application/json")]
    )
    async with client(lambda r: next(answers)) as platform:
        with pytest.raises(NotFound, match="no such task"):
            await read_events(platform)
        with pytest.raises(Internal, match="task_events"):
            await read_events(platform)


async def test_stream_needs_an_organization() -> None:
    async with client(lambda r: sse(b"")) as platform:
        with pytest.raises(Unauthenticated):
            async with platform.stream_events("t1", Credentials(api_key="k", organization_id=None)):
                pass

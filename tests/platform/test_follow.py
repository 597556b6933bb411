"""Following a task's events across drops, against scripted upstream connections (httpx MockTransport)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest

from bridge.credentials import Credentials
from bridge.errors import Aborted, NotFound, Unavailable
from bridge.platform import follow
from bridge.platform.client import PlatformClient
from bridge.platform.follow import Connection, Ended, Follower, ReconnectPolicy, Refused, StreamRefused

CREDS = Credentials(api_key="k", organization_id="org")
FAST = ReconnectPolicy(attempts=2, initial_backoff=0.001, max_backoff=0.002)


def frame(sequence: int | None, kind: str) -> bytes:
    head = b"" if sequence is None else b"id: %d\n" % sequence
    return head + b"data: " + orjson.dumps({"type": kind, "n": sequence}) + b"\n\n"


class Body(httpx.AsyncByteStream):
    """Sends `pieces`, then ends cleanly, breaks (`error`) or stays open until closed (`hang`)."""

    def __init__(self, pieces: list[bytes], *, error: Exception | None = None, hang: bool = False) -> None:
        self._pieces, self._error, self._hang = pieces, error, hang
        self.closed = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            yield piece
        if self._error is not None:
            raise self._error
        if self._hang:
            await self.closed.wait()

    async def aclose(self) -> None:
        self.closed.set()


Answer = Callable[[httpx.Request], httpx.Response]


def upstream(*connections: Answer) -> tuple[PlatformClient, list[httpx.Request]]:
    """A client whose n-th stream request is answered by the n-th connection."""
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return connections[min(len(requests), len(connections)) - 1](request)

    transport = httpx.MockTransport(handler)
    platform = PlatformClient(
        base_url="http://p.test",
        events_base_url="http://p.test",
        org_in_rest_path=False,
        transport=transport,
        stream_transport=transport,
    )
    return platform, requests


def stream(body: Body) -> Answer:
    return lambda request: httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)


def frames(*pairs: tuple[int | None, str]) -> list[bytes]:
    return [frame(sequence, kind) for sequence, kind in pairs]


RUN = [(1, "task_created"), (2, "task_updated"), (3, "chunk"), (4, "chunk"), (5, "task_finished")]
DROP = httpx.RemoteProtocolError("peer closed connection without sending complete message body")


async def collect(platform: PlatformClient, **options: Any) -> list[int]:
    async with platform:
        follower = Follower(platform, "t1", CREDS, policy=FAST, **options)
        return [sequence async for sequence, _ in follower.events()]


async def test_clean_stream_ends_after_task_finished() -> None:
    platform, requests = upstream(stream(Body(frames(*RUN))))
    assert await collect(platform) == [1, 2, 3, 4, 5]
    assert "last-event-id" not in requests[0].headers


async def test_drop_reconnects_with_last_event_id_and_skips_replays() -> None:
    platform, requests = upstream(
        stream(Body(frames(*RUN[:3]), error=DROP)),
        # A platform that ignores Last-Event-ID replays from the start: the bridge skips by sequence.
        stream(Body(frames(*RUN))),
    )
    assert await collect(platform) == [1, 2, 3, 4, 5]
    assert requests[1].headers["last-event-id"] == "3"


async def test_after_sequence_skips_and_resumes_by_id() -> None:
    platform, requests = upstream(stream(Body(frames(*RUN))))
    assert await collect(platform, after_sequence=3) == [4, 5]
    assert requests[0].headers["last-event-id"] == "3"


async def test_events_without_ids_resume_by_counting_without_last_event_id() -> None:
    unnumbered = [(None, kind) for _, kind in RUN]
    platform, requests = upstream(
        stream(Body(frames(*unnumbered[:2]))),  # closed early, cleanly
        stream(Body(frames(*unnumbered))),
    )
    assert await collect(platform) == [1, 2, 3, 4, 5]
    assert "last-event-id" not in requests[1].headers


async def test_empty_resume_at_the_end_replays_once_to_see_the_end() -> None:
    platform, requests = upstream(stream(Body([])), stream(Body(frames(*RUN))))
    assert await collect(platform, after_sequence=5) == []
    assert requests[0].headers["last-event-id"] == "5"
    assert "last-event-id" not in requests[1].headers


async def test_exhausted_reconnections_raise_unavailable_naming_the_last_sequence() -> None:
    platform, requests = upstream(
        stream(Body(frames(*RUN[:2]), error=DROP)),
        lambda request: httpx.Response(503, json={"detail": "overloaded"}),
    )
    delivered: list[int] = []

    async def follow_all() -> None:
        async with platform:
            async for sequence, _ in Follower(platform, "t1", CREDS, policy=FAST).events():
                delivered.append(sequence)

    with pytest.raises(Unavailable) as error:
        await follow_all()
    assert delivered == [1, 2]
    assert len(requests) == 1 + 1 + FAST.attempts
    assert error.value.metadata["last_sequence"] == "2"
    assert error.value.reason == "UPSTREAM_STREAM_LOST"
    assert error.value.retry_after == FAST.max_backoff
    assert "after_sequence=2" in error.value.message


async def test_progress_resets_the_attempt_count() -> None:
    platform, _ = upstream(
        stream(Body(frames(*RUN[:1]), error=DROP)),
        stream(Body(frames(*RUN[:2]), error=DROP)),
        stream(Body(frames(*RUN[:3]), error=DROP)),
        stream(Body(frames(*RUN[:4]), error=DROP)),
        stream(Body(frames(*RUN))),
    )
    assert await collect(platform) == [1, 2, 3, 4, 5]


async def test_non_retriable_errors_end_at_once() -> None:
    platform, requests = upstream(lambda request: httpx.Response(404, json={"detail": "gone"}))
    with pytest.raises(NotFound):
        await collect(platform)
    assert len(requests) == 1


async def test_a_finished_run_followed_by_another_run_goes_on() -> None:
    second = [(6, "task_created"), (7, "chunk"), (8, "task_finished")]
    platform, _ = upstream(stream(Body(frames(*RUN, *second))))
    assert await collect(platform) == [1, 2, 3, 4, 5, 6, 7, 8]


async def test_an_open_stream_after_task_finished_ends_after_the_linger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(follow, "FINISH_LINGER", 0.05)
    body = Body(frames(*RUN), hang=True)
    platform, _ = upstream(stream(body))
    async with asyncio.timeout(5):
        assert await collect(platform) == [1, 2, 3, 4, 5]
    assert body.closed.is_set()


def test_backoff_doubles_is_capped_and_jittered() -> None:
    policy = ReconnectPolicy(attempts=5, initial_backoff=0.1, max_backoff=0.5)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.5), (9, 0.5)]:
        delays = {policy.delay(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1


# --- Resuming whatever a connection returned ------------------------------------------------------------

SECOND = [(6, "task_created"), (7, "chunk"), (8, "task_finished")]


def resuming(*log: tuple[int, str], run_start: int) -> Answer:
    """A platform that honours Last-Event-ID and, without one, starts at the newest run (as the local one)."""

    def answer(request: httpx.Request) -> httpx.Response:
        last = request.headers.get("last-event-id")
        first = int(last) if last is not None else run_start - 1
        return stream(Body(frames(*log[first:])))(request)

    return answer


async def test_an_empty_answer_does_not_stop_resuming_by_id() -> None:
    platform, requests = upstream(
        stream(Body(frames(*RUN[:3]), error=DROP)),
        stream(Body([])),  # a clean, empty answer: a glitch, or a platform between runs
        resuming(*RUN, *SECOND, run_start=6),  # meanwhile the task was continued
    )
    assert await collect(platform) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [r.headers.get("last-event-id") for r in requests] == [None, "3", "3"]


async def test_after_sequence_zero_asks_for_every_run() -> None:
    platform, requests = upstream(resuming(*RUN, *SECOND, run_start=6))
    assert await collect(platform, after_sequence=0) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert requests[0].headers["last-event-id"] == "0"


async def test_unset_after_sequence_starts_where_the_platform_starts() -> None:
    platform, requests = upstream(resuming(*RUN, *SECOND, run_start=6))
    assert await collect(platform) == [6, 7, 8]
    assert "last-event-id" not in requests[0].headers


async def test_a_cut_right_after_task_finished_resumes_to_see_whether_a_run_follows() -> None:
    platform, requests = upstream(
        stream(Body(frames(*RUN), error=DROP)),
        resuming(*RUN, *SECOND, run_start=6),
    )
    assert await collect(platform, after_sequence=0) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert requests[1].headers["last-event-id"] == "5"


async def test_a_cut_after_task_finished_ends_ok_when_the_platform_stays_away() -> None:
    platform, requests = upstream(
        stream(Body(frames(*RUN), error=DROP)),
        lambda request: httpx.Response(503, json={"detail": "overloaded"}),
    )
    assert await collect(platform) == [1, 2, 3, 4, 5]
    assert len(requests) == 1 + 1 + FAST.attempts


async def test_a_resumed_stream_whose_last_event_is_task_finished_ends_at_an_empty_answer() -> None:
    platform, _ = upstream(stream(Body(frames(*RUN[:4]), error=DROP)), stream(Body(frames(*RUN))))
    # The client asked from 4 on; the replay shows event 5 (task_finished) and the stream ends.
    assert await collect(platform, after_sequence=4) == [5]
    platform, requests = upstream(stream(Body(frames(*RUN), error=DROP)), stream(Body([])))
    assert await collect(platform, after_sequence=2) == [3, 4, 5]
    assert len(requests) == 2


# --- One connection's typed outcome, and the one refusal the caller may explain -------------------------


async def read_connection(platform: PlatformClient, last_event_id: int | None = None) -> Ended | Refused:
    async with platform:
        connection = Connection(platform, "t1", CREDS, last_event_id)
        _ = [sequence async for sequence, _ in connection.events()]
        assert connection.outcome is not None
        return connection.outcome


async def test_a_connection_says_how_it_ended() -> None:
    clean, _ = upstream(stream(Body(frames(*RUN))))
    assert await read_connection(clean) == Ended(received=5, finished=True, numeric_ids=True)
    cut, _ = upstream(stream(Body(frames(*RUN[:2]), error=DROP)))
    ended = await read_connection(cut, last_event_id=0)
    assert isinstance(ended, Ended)
    assert (ended.received, ended.finished) == (2, False)
    assert isinstance(ended.dropped, Unavailable)
    refused, _ = upstream(lambda request: httpx.Response(409, json={"detail": "busy"}))
    outcome = await read_connection(refused)
    assert isinstance(outcome, Refused)
    assert isinstance(outcome.error, Aborted)


async def test_a_first_refusal_is_raised_once_as_stream_refused() -> None:
    platform, _ = upstream(lambda request: httpx.Response(409, json={"detail": "busy"}))
    async with platform:
        follower = Follower(platform, "t1", CREDS, policy=FAST)
        with pytest.raises(StreamRefused) as refused:
            _ = [event async for event in follower.events()]
        assert not refused.value.retriable
        assert isinstance(refused.value.error, Aborted)
        with pytest.raises(Aborted):
            _ = [event async for event in follower.events()]


async def test_a_first_empty_stream_is_raised_once_then_reconnected() -> None:
    platform, requests = upstream(stream(Body([])), stream(Body(frames(*RUN))))
    async with platform:
        follower = Follower(platform, "t1", CREDS, policy=FAST)
        with pytest.raises(StreamRefused) as refused:
            _ = [event async for event in follower.events()]
        assert refused.value.retriable
        assert [sequence async for sequence, _ in follower.events()] == [1, 2, 3, 4, 5]
    assert len(requests) == 2

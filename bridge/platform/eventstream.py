"""The events of one open task event stream: SSE text decoded into `(sequence, envelope)` pairs, bounded."""

from __future__ import annotations

import codecs
import logging
from collections.abc import AsyncIterator
from typing import Any, Final

import httpx
import orjson

from bridge.errors import ResourceExhausted
from bridge.platform import jsonbody
from bridge.platform.failures import translated
from bridge.platform.sse import EventTooLarge, LineSplitter, SSEDecoder

__all__ = ["MAX_SEQUENCE", "EventStream"]

_log = logging.getLogger(__name__)

_ROUTE: Final = "task_events"
MAX_SEQUENCE: Final = 2**64 - 1
"""The largest `id:` read as a sequence: `TaskEvent.sequence` is a uint64."""
# Room for a field name and its colon on the line that carries the largest allowed data.
_LINE_SLACK: Final = 64


class EventStream:
    """The events of one open stream connection, as `(sequence, envelope)` pairs in platform order.

    `sequence` is the event's `id:` when that is a decimal number from 0 to 2^64-1 (what a uint64 sequence can
    carry); any other id (none, not a number, larger) is treated as absent and the event gets its 1-based
    position on this connection instead, counting on from the last numbered event (the platform replays every
    task stream from its start). An event whose data is not a JSON object is skipped with a warning, like the
    SDK does; its sequence is not reused.

    Bounds: an event whose data is longer than `max_event_bytes` characters (the platform's JSON is ASCII, so
    bytes), or a line that grows past that without ending, ends the stream with RESOURCE_EXHAUSTED
    `UPSTREAM_EVENT_TOO_LARGE`; data nesting deeper than `max_json_depth` with `UPSTREAM_JSON_TOO_DEEP`. Both
    carry `route` and `limit` metadata. What was buffered is dropped before the error is raised.
    """

    def __init__(
        self,
        response: httpx.Response,
        task_id: str,
        *,
        max_event_bytes: int = 4 * 1024 * 1024,
        max_json_depth: int = 32,
    ) -> None:
        self._response = response
        self._task_id = task_id
        self._max_event_bytes = max_event_bytes
        self._max_json_depth = max_json_depth
        self._counted = 0
        self.numeric_ids = True
        """False once an event arrived without a usable numeric `id:` (then `Last-Event-ID` means nothing)."""

    def __aiter__(self) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        return self._events()

    async def _events(self) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        splitter = LineSplitter(max_line=self._max_event_bytes + _LINE_SLACK)
        decoder = SSEDecoder(max_data=self._max_event_bytes)
        # SSE is UTF-8 by definition (no charset to sniff); an uncompressed body still arriving skips httpx's
        # decoder layers. A compressed one, or one the transport already read whole, goes through them.
        text_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        response = self._response
        encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
        raw = not encoded and not response.is_stream_consumed
        breach: ResourceExhausted | None = None
        try:
            with translated(_ROUTE):
                async for data in response.aiter_raw() if raw else response.aiter_bytes():
                    for line in splitter.feed(text_decoder.decode(data)):
                        event = decoder.decode(line)
                        if event is None:
                            continue
                        sequence = self._sequence(event.id if event.has_id else None)
                        envelope = self._envelope(sequence, event.data)
                        del event
                        if envelope is None:
                            continue
                        yield sequence, envelope
                        # Not kept while waiting for more: an idle stream would hold its last event.
                        del envelope
        except EventTooLarge:
            breach = self._breach("UPSTREAM_EVENT_TOO_LARGE", "an event larger than", self._max_event_bytes)
        except jsonbody.TooDeep:
            breach = self._breach(
                "UPSTREAM_JSON_TOO_DEEP", "event data nested deeper than", self._max_json_depth
            )
        # Raised outside the handler so the error does not keep the parser's exception, and its frames, alive.
        if breach is not None:
            raise breach

    def _sequence(self, event_id: str | None) -> int:
        if event_id is not None and event_id.isascii() and event_id.isdigit() and len(event_id) <= 20:
            sequence = int(event_id)
            if sequence <= MAX_SEQUENCE:
                self._counted = sequence
                return sequence
        self.numeric_ids = False
        # Past the largest uint64 the position repeats, and the follower skips it as already delivered.
        self._counted = min(self._counted + 1, MAX_SEQUENCE)
        return self._counted

    def _envelope(self, sequence: int, data: str) -> dict[str, Any] | None:
        try:
            envelope = jsonbody.loads(data, max_depth=self._max_json_depth)
        except orjson.JSONDecodeError:
            envelope = None
        if not isinstance(envelope, dict):
            _log.warning(
                "skipped event %d of task %s: its data is not a JSON object (%d chars)",
                sequence,
                self._task_id,
                len(data),
            )
            return None
        return envelope

    def _breach(self, reason: str, what: str, limit: int) -> ResourceExhausted:
        return ResourceExhausted(
            f"the platform sent {what} the bridge accepts ({limit}) on the event stream of task "
            f"{self._task_id}",
            reason=reason,
            metadata={"route": _ROUTE, "limit": str(limit)},
        )

"""The events of one open task event stream: SSE text decoded into `(sequence, envelope)` pairs."""

from __future__ import annotations

import codecs
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from bridge.platform.failures import translated
from bridge.platform.sse import LineSplitter, SSEDecoder

__all__ = ["EventStream"]

_log = logging.getLogger(__name__)


class EventStream:
    """The events of one open stream connection, as `(sequence, envelope)` pairs in platform order.

    `sequence` is the event's numeric `id:` when it has one, else its 1-based position on this connection
    (the platform replays every task stream from its start). An event whose data is not a JSON object is
    skipped with a warning, like the SDK does; its sequence is not reused.
    """

    def __init__(self, response: httpx.Response, task_id: str) -> None:
        self._response = response
        self._task_id = task_id
        self._counted = 0
        self.numeric_ids = True
        """False once an event arrived without a numeric `id:` (then `Last-Event-ID` means nothing)."""

    def __aiter__(self) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        return self._events()

    async def _events(self) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        splitter = LineSplitter()
        decoder = SSEDecoder()
        # SSE is UTF-8 by definition (no charset to sniff); an uncompressed body still arriving skips httpx's
        # decoder layers. A compressed one, or one the transport already read whole, goes through them.
        text_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        response = self._response
        encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
        raw = not encoded and not response.is_stream_consumed
        with translated("task_events"):
            async for data in response.aiter_raw() if raw else response.aiter_bytes():
                for line in splitter.feed(text_decoder.decode(data)):
                    event = decoder.decode(line)
                    if event is None:
                        continue
                    if event.has_id and event.id.isascii() and event.id.isdigit():
                        sequence = int(event.id)
                    else:
                        self.numeric_ids = False
                        sequence = self._counted + 1
                    self._counted = sequence
                    try:
                        envelope = orjson.loads(event.data)
                    except orjson.JSONDecodeError:
                        envelope = None
                    if not isinstance(envelope, dict):
                        _log.warning(
                            "skipped event %d of task %s: its data is not a JSON object (%d chars)",
                            sequence,
                            self._task_id,
                            len(event.data),
                        )
                        continue
                    yield sequence, envelope
                    # Not kept while waiting for more: an idle stream would hold its last event.
                    del envelope, event

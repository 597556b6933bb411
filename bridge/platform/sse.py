"""A pure `text/event-stream` decoder after the WHATWG HTML specification (§9.2.6): text in, events out.

`LineSplitter` turns arbitrary text chunks into lines (CRLF, CR and LF all end a line, even when a CRLF is
split across chunks; a leading byte-order mark is dropped). `SSEDecoder` turns lines into `ServerSentEvent`s:
fields `data`, `event` and `id` (`retry` is ignored), comment lines, multi-line data joined with a newline,
dispatch on a blank line. No I/O: the platform client feeds it what it reads.

Both are bounded when given a limit: `LineSplitter(max_line=...)` refuses to buffer an unterminated line
longer than that (a stream without newlines cannot grow memory), `SSEDecoder(max_data=...)` refuses an event
whose data lines add up to more. Either raises `EventTooLarge` after dropping what it had buffered.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["EventTooLarge", "LineSplitter", "SSEDecoder", "ServerSentEvent"]

_BOM = "\ufeff"


class EventTooLarge(ValueError):
    """An event's data, or a single unterminated line, is longer than the decoder's limit."""


class ServerSentEvent(NamedTuple):
    """One dispatched event (a named tuple: one is built per event, and a frozen dataclass costs more).

    `id` is the stream's last event id at dispatch time (it persists across events, per the specification);
    `has_id` says whether this event carried an `id:` field itself.
    """

    data: str
    event: str = "message"
    id: str = ""
    has_id: bool = False


class LineSplitter:
    """Splits a stream of text chunks into lines without their terminators, none longer than `max_line`."""

    def __init__(self, *, max_line: int | None = None) -> None:
        self._max_line = max_line
        self._buffer = ""
        self._started = False
        self._pending_cr = False

    def feed(self, chunk: str) -> list[str]:
        """The lines completed by `chunk`, in order."""
        if not self._started and chunk:
            self._started = True
            if chunk.startswith(_BOM):
                chunk = chunk[1:]
        if self._pending_cr:
            # The previous chunk ended with CR: a LF starting this one belongs to the same terminator.
            self._pending_cr = False
            if chunk.startswith("\n"):
                chunk = chunk[1:]
        if not chunk:
            return []
        text = self._buffer + chunk
        # str.splitlines() would also split on form feeds, U+2028 and friends, which SSE treats as text; a
        # plain split on LF does for the common stream without CR, and the expression handles the rest.
        parts = text.split("\n") if "\r" not in text else _TERMINATOR.split(text)
        self._buffer = parts.pop()
        if chunk.endswith("\r"):
            self._pending_cr = True
        if self._max_line is not None and len(self._buffer) > self._max_line:
            self._buffer = ""
            raise EventTooLarge(f"a line longer than {self._max_line} characters")
        return parts


_TERMINATOR = re.compile(r"\r\n|\r|\n")


class SSEDecoder:
    """Turns lines (without terminators) into events; feed `""` for the blank line that dispatches.

    `max_data` bounds one event's data: its data lines and the newlines that join them, in characters.
    """

    def __init__(self, *, max_data: int | None = None) -> None:
        self._max_data = max_data
        self._size = 0
        self._data: list[str] = []
        self._event = ""
        self._last_event_id = ""
        self._has_id = False

    def decode(self, line: str) -> ServerSentEvent | None:
        """Process one line; return the event a blank line dispatches, else None."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            if self._max_data is not None:
                self._size += len(value) + 1
                if self._size - 1 > self._max_data:
                    self._data, self._size = [], 0
                    raise EventTooLarge(f"an event's data is longer than {self._max_data} characters")
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            # An id containing NUL is ignored entirely, per the specification.
            self._last_event_id = value
            self._has_id = True
        # `retry` (the reconnection delay a stream asks for) is ignored: the bridge keeps its own backoff
        # policy, which a platform must not be able to shorten. Any other field name is ignored, per the
        # specification.
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event, has_id = self._data, self._event, self._has_id
        self._data, self._event, self._has_id, self._size = [], "", False, 0
        if not data:
            return None
        return ServerSentEvent(
            data="\n".join(data),
            event=event or "message",
            id=self._last_event_id,
            has_id=has_id,
        )

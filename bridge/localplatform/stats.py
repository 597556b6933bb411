"""Counters that tests read through `GET /_local/stats` to see what a client really did upstream."""

from __future__ import annotations

from typing import Any

__all__ = ["Stats"]


class Stats:
    """Requests per route name and HTTP status, and event streams open now and opened in total."""

    def __init__(self) -> None:
        self._requests: dict[str, dict[int, int]] = {}
        self.open_event_streams = 0
        self.event_streams_opened = 0

    def count(self, route: str, status: int) -> None:
        """Count one answered request."""
        by_status = self._requests.get(route)
        if by_status is None:
            by_status = self._requests[route] = {}
        by_status[status] = by_status.get(status, 0) + 1

    def stream_opened(self) -> None:
        """An event stream started sending."""
        self.open_event_streams += 1
        self.event_streams_opened += 1

    def stream_closed(self) -> None:
        """An event stream ended, whichever side closed it."""
        self.open_event_streams -= 1

    def reset(self) -> None:
        """Forget the request counts (open streams stay counted: they are still open)."""
        self._requests.clear()
        self.event_streams_opened = self.open_event_streams

    def snapshot(self, *, tasks: int, running_tasks: int, evicted_tasks: int) -> dict[str, Any]:
        """The `/_local/stats` document; statuses are JSON object keys, hence strings."""
        return {
            "requests": {
                route: {str(status): n for status, n in sorted(by_status.items())}
                for route, by_status in sorted(self._requests.items())
            },
            "open_event_streams": self.open_event_streams,
            "event_streams_opened": self.event_streams_opened,
            "tasks": tasks,
            "running_tasks": running_tasks,
            "evicted_tasks": evicted_tasks,
        }

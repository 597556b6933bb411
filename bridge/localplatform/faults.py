"""Injected faults: make the next N requests of one route fail, slow down, or (event streams) break mid-way.

`POST /_local/faults` body (JSON), all keys but `route` optional:

    {"route": "create_task", "status": 503, "times": 2, "retry_after": 1, "latency": 0.2,
     "drop_after_events": 3, "close_cleanly": false, "detail": "..."}

`times` defaults to 1; `null` means "until cleared". A request of that route consumes one use of the oldest
matching fault: it first waits `latency` seconds, then answers `status` with `{"detail": detail}` (and a
`Retry-After` header when `retry_after` is set), or, for `task_events` with `drop_after_events`, streams that
many events and cuts the connection without `task_finished` (with `close_cleanly`: ends the response properly
instead, as a platform closing an idle stream would).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Fault", "FaultPlan", "RouteName"]

RouteName = Literal[
    "create_task",
    "get_task",
    "stop_task",
    "update_task",
    "list_tasks",
    "list_user_tasks",
    "list_agents",
    "get_agent",
    "task_events",
]


class Fault(BaseModel):
    """One fault rule, as posted to `/_local/faults`."""

    model_config = ConfigDict(strict=True, extra="forbid")

    route: RouteName
    status: int | None = Field(default=None, ge=400, le=599)
    times: int | None = Field(default=1, ge=1)
    retry_after: int | None = Field(default=None, ge=0)
    latency: float = Field(default=0.0, ge=0.0, le=60.0)
    drop_after_events: int | None = Field(default=None, ge=0)
    close_cleanly: bool = False
    detail: str | None = None

    @model_validator(mode="after")
    def _does_something(self) -> Fault:
        if self.status is None and self.latency == 0 and self.drop_after_events is None:
            raise ValueError("a fault needs at least one of status, latency or drop_after_events")
        if self.drop_after_events is not None and self.route != "task_events":
            raise ValueError("drop_after_events applies only to the task_events route")
        if self.close_cleanly and self.drop_after_events is None:
            raise ValueError("close_cleanly applies only with drop_after_events")
        if self.drop_after_events is not None and self.status is not None:
            raise ValueError(
                "drop_after_events and status exclude each other: a stream either starts or fails"
            )
        return self

    def error_detail(self) -> str:
        """The `detail` of the injected error body."""
        return self.detail or f"injected fault: {self.route} answers {self.status}"


class FaultPlan:
    """The active fault rules, consumed first-in first-out per route."""

    def __init__(self) -> None:
        self._rules: list[Fault] = []

    def __bool__(self) -> bool:
        return bool(self._rules)

    def add(self, fault: Fault) -> None:
        """Activate a rule after those already active."""
        self._rules.append(fault)

    def clear(self) -> None:
        """Drop every rule."""
        self._rules.clear()

    def take(self, route: str) -> Fault | None:
        """The rule that applies to this request of `route`, using up one of its `times`."""
        for index, fault in enumerate(self._rules):
            if fault.route != route:
                continue
            if fault.times is not None:
                remaining = fault.times - 1
                if remaining:
                    self._rules[index] = fault.model_copy(update={"times": remaining})
                else:
                    del self._rules[index]
            return fault
        return None

    def describe(self) -> list[dict[str, Any]]:
        """The active rules as JSON, with their remaining `times`."""
        return [fault.model_dump() for fault in self._rules]

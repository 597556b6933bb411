"""Where tasks live: an in-memory map of task records, bounded by evicting the oldest finished tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from bridge.localplatform.agents import BuiltinAgent
from bridge.localplatform.eventlog import EventLog
from bridge.localplatform.script import Step
from bridge.localplatform.tasks import list_item, matches
from bridge.localplatform.wire import dumps

__all__ = ["TaskRecord", "TaskStore"]


class TaskRecord:
    """One task: its Task JSON, its event log and where its current run stands."""

    __slots__ = (
        "_json",
        "agent",
        "log",
        "next_step",
        "run",
        "run_started",
        "steps",
        "task",
        "timer",
        "updated_at",
    )

    def __init__(self, task: dict[str, Any], agent: BuiltinAgent) -> None:
        self.task = task
        self.agent = agent
        self.log = EventLog()
        self.run = 0
        self.run_started = 0.0
        self.steps: list[Step] = []
        self.next_step = 0
        self.timer: asyncio.Handle | None = None  # the pending step, None once the run holds or ended
        self.updated_at: str = task["created_at"]
        self._json: bytes | None = None

    @property
    def id(self) -> str:
        """The task id."""
        return str(self.task["id"])

    def json(self) -> bytes:
        """The Task JSON, serialised once per change: gets of a settled task cost no encoding."""
        if self._json is None:
            self._json = dumps(self.task)
        return self._json

    def touch(self, now: str) -> None:
        """Note that `task` was changed (at `now`)."""
        self._json = None
        self.updated_at = now


class TaskStore:
    """Task records by id, in creation order; holds at most `max_finished` finished tasks."""

    def __init__(self, max_finished: int) -> None:
        self._tasks: dict[str, TaskRecord] = {}
        # Finished task ids in the order they finished: a dict is an insertion-ordered set with O(1) removal.
        self._finished: dict[str, None] = {}
        self._max_finished = max_finished
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[TaskRecord]:
        return iter(list(self._tasks.values()))

    def add(self, record: TaskRecord) -> None:
        """Hold a newly created task."""
        self._tasks[record.id] = record

    def get(self, task_id: str) -> TaskRecord | None:
        """The task with this id, unless unknown or evicted."""
        return self._tasks.get(task_id)

    def finished(self, record: TaskRecord) -> None:
        """Count a task as finished, then evict the oldest finished tasks beyond the bound."""
        self._finished.pop(record.id, None)
        self._finished[record.id] = None
        while len(self._finished) > self._max_finished:
            oldest = next(iter(self._finished))
            del self._finished[oldest]
            self._tasks.pop(oldest, None)
            self.evicted += 1

    def reopened(self, record: TaskRecord) -> None:
        """A finished task runs again (continued): it is no longer a candidate for eviction."""
        self._finished.pop(record.id, None)

    def history(
        self, filters: dict[str, str], *, agent_id: str | None = None, user_id: str | None = None
    ) -> list[dict[str, Any]]:
        """List items of the matching tasks, newest first."""
        if user_id is not None:
            filters = {**filters, "user_id": user_id}
        items = []
        for record in reversed(self._tasks.values()):
            task = record.task
            if agent_id is not None and task["agent_id"] != agent_id:
                continue
            if matches(task, filters):
                items.append(list_item(task, record.updated_at))
        return items

"""How a task moves (create, continue, stop, update, scripted runs), each move with its events."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from bridge.localplatform.agents import BuiltinAgent
from bridge.localplatform.bodies import TERMINAL_STATUSES, CreateTaskBody
from bridge.localplatform.script import Emit, Finish, Hold, SetStatus, plan_run
from bridge.localplatform.store import TaskRecord, TaskStore
from bridge.localplatform.tasks import new_task, start_new_run
from bridge.localplatform.wire import ApiError, dumps, now_iso

__all__ = ["Lifecycle"]

_log = logging.getLogger(__name__)


class Lifecycle:
    """The only writer of tasks: handlers and scripted runs change a task through these methods."""

    def __init__(self, store: TaskStore, *, organization_id: str, step_delay: float) -> None:
        self._store = store
        self._organization_id = organization_id
        self._org_json = dumps(organization_id)
        self._step_delay = step_delay

    def create(self, agent: BuiltinAgent, body: CreateTaskBody, agent_version: str | None) -> TaskRecord:
        """Create a task (status `pending`, `task_created` emitted) and start its first run."""
        task_id = str(uuid.uuid4())
        task = new_task(
            task_id=task_id,
            agent_id=agent.id,
            organization_id=self._organization_id,
            body=body,
            agent_version=agent_version,
            now=now_iso(),
        )
        record = TaskRecord(task, agent)
        self._store.add(record)
        self._start_run(record)
        return record

    def continue_task(
        self, record: TaskRecord, agent: BuiltinAgent, body: CreateTaskBody, agent_version: str | None
    ) -> None:
        """Start a new run of an existing task: same id, new input, events appended to the same stream."""
        if record.agent.id != agent.id:
            raise ApiError(409, f"task {record.id} belongs to agent {record.agent.id}, not {agent.id}")
        if record.task["status"] in ("pending", "executing"):
            raise ApiError(
                409, f"task {record.id} is still {record.task['status']}: stop it or let it finish first"
            )
        self._cancel_run(record)  # a paused run holds until it is replaced
        self._store.reopened(record)
        start_new_run(record.task, body, agent_version)
        self._start_run(record)

    def stop(self, record: TaskRecord) -> None:
        """Stop a task that has not ended; a task already ended is left unchanged."""
        if record.task["status"] in TERMINAL_STATUSES:
            return
        self._cancel_run(record)
        self._finish(record, "stopped", record.task["result"], manually_stopped=True)

    def update(self, record: TaskRecord, changes: dict[str, Any]) -> None:
        """Apply a PATCH: a terminal status ends the run, another status or field change emits `task_updated`.

        A task whose run has ended takes the changes silently: its stream has closed after `task_finished`.
        """
        task = record.task
        status = changes.pop("status", None)
        was_running = task["status"] not in TERMINAL_STATUSES
        task.update(changes)
        record.touch(now_iso())
        if not was_running:
            if status is not None:
                task["status"] = status
            return
        if status in TERMINAL_STATUSES:
            self._cancel_run(record)
            self._finish(record, status, task["result"])
        elif status is not None and status != task["status"]:
            self._set_status(record, status)
        else:
            self._snapshot(record, "task_updated")

    def shutdown(self) -> None:
        """Cancel every pending step: no run moves any more."""
        for record in self._store:
            self._cancel_run(record)

    def _start_run(self, record: TaskRecord) -> None:
        task = record.task
        record.run += 1
        record.run_started = asyncio.get_running_loop().time()
        record.touch(now_iso())
        self._snapshot(record, "task_created")
        record.steps = plan_run(
            record.agent,
            task_id=record.id,
            run=record.run,
            prompt=task["input"].get("text") or "",
            output_format=task["output_format"],
            output_schema=task["output_schema"],
            default_delay=self._step_delay,
        )
        record.next_step = 0
        self._schedule(record)

    # A run is a chain of timer callbacks, one per step, rather than a coroutine sleeping between steps: the
    # platform plays thousands of runs at once and a bare timer costs a fraction of a task wake-up per step.
    def _schedule(self, record: TaskRecord) -> None:
        delay = record.steps[record.next_step][0]
        loop = asyncio.get_running_loop()
        # `#delay=0` runs (benchmarks) skip the timer heap: a plain callback is several times cheaper.
        if delay > 0:
            record.timer = loop.call_later(delay, self._play_step, record)
        else:
            record.timer = loop.call_soon(self._play_step, record)

    def _play_step(self, record: TaskRecord) -> None:
        record.timer = None
        _, action = record.steps[record.next_step]
        record.next_step += 1
        try:
            if isinstance(action, Emit):
                self._emit(record, action.type, dumps(action.data))
            elif isinstance(action, SetStatus):
                self._set_status(record, action.status)
            elif isinstance(action, Finish):
                record.task["tokens"] = action.tokens
                record.task["used_tools"] = action.used_tools
                self._finish(record, action.status, action.result)
                return
            elif isinstance(action, Hold):
                return  # nothing more is scheduled: the task stays as it is until stopped or continued
        except Exception as exc:  # a bug in a script must end the task visibly, not leave it running forever
            _log.exception("scripted run of task %s failed", record.id)
            self._finish(record, "error", f"local platform script error: {exc}")
            return
        self._schedule(record)

    def _cancel_run(self, record: TaskRecord) -> None:
        timer, record.timer = record.timer, None
        if timer is not None:
            timer.cancel()

    def _set_status(self, record: TaskRecord, status: str) -> None:
        task = record.task
        now = now_iso()
        task["status"] = status
        if status == "executing" and task["started_at"] is None:
            task["started_at"] = now
        elif status == "paused":
            task["paused_at"] = now
        record.touch(now)
        self._snapshot(record, "task_updated")

    def _finish(
        self, record: TaskRecord, status: str, result: str | None, *, manually_stopped: bool = False
    ) -> None:
        task = record.task
        now = now_iso()
        task.update(status=status, result=result, finished_at=now, is_manually_stopped=manually_stopped)
        task["duration"] = round(asyncio.get_running_loop().time() - record.run_started, 6)
        record.steps = []  # a finished task may stay for long (up to max_finished_tasks): keep it lean
        record.touch(now)
        self._snapshot(record, "task_finished")
        self._store.finished(record)

    def _snapshot(self, record: TaskRecord, event_type: str) -> None:
        self._emit(record, event_type, record.json())

    def _emit(self, record: TaskRecord, event_type: str, data: bytes) -> None:
        if not record.task["events_streaming"]:
            return  # nobody may subscribe (409), so keeping frames would only cost memory
        # Composed by hand so a snapshot reuses the Task JSON that a following GET will serve too.
        envelope = b'{"type":"%b","task_id":"%b","organization_id":%b,"time":"%b","data":%b}' % (
            event_type.encode(),
            record.id.encode(),
            self._org_json,
            now_iso().encode(),
            data,
        )
        record.log.append(
            envelope, starts_run=event_type == "task_created", finishes=event_type == "task_finished"
        )

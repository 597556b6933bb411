"""Everything the request handlers of one local platform share, reached through `request.app[STATE]`."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from bridge.localplatform.agents import AGENTS, agent_document, agent_list_item
from bridge.localplatform.faults import FaultPlan
from bridge.localplatform.lifecycle import Lifecycle
from bridge.localplatform.stats import Stats
from bridge.localplatform.store import TaskStore
from bridge.localplatform.wire import dumps

__all__ = ["CLOSE_CLEANLY", "COUNTED", "DROP_AFTER", "STATE", "PlatformState"]


@dataclass(eq=False)
class PlatformState:
    """Settings, tasks, faults and counters of one running local platform."""

    organization_id: str
    api_keys: frozenset[str]
    keepalive_interval: float
    store: TaskStore
    lifecycle: Lifecycle
    faults: FaultPlan = field(default_factory=FaultPlan)
    stats: Stats = field(default_factory=Stats)
    closing: bool = False
    # The agent catalogue never changes while running: serialise it once.
    agents_json: bytes = b"[]"
    agent_json: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        organization_id: str,
        api_keys: frozenset[str],
        keepalive_interval: float,
        step_delay: float,
        max_finished_tasks: int,
    ) -> PlatformState:
        """A fresh platform: no tasks, no faults, zeroed counters."""
        store = TaskStore(max_finished_tasks)
        return cls(
            organization_id=organization_id,
            api_keys=api_keys,
            keepalive_interval=keepalive_interval,
            store=store,
            lifecycle=Lifecycle(store, organization_id=organization_id, step_delay=step_delay),
            agents_json=dumps([agent_list_item(agent, organization_id) for agent in AGENTS.values()]),
            agent_json={agent.id: dumps(agent_document(agent, organization_id)) for agent in AGENTS.values()},
        )


STATE = web.AppKey("local_platform_state", PlatformState)

# Per-request notes between the middleware and the event-stream handler.
COUNTED = web.RequestKey("local_platform_counted", bool)  # the handler counted itself in the stats already
DROP_AFTER = web.RequestKey(
    "local_platform_drop_after", int
)  # an injected fault cuts the stream after N events
CLOSE_CLEANLY = web.RequestKey(
    "local_platform_close_cleanly", bool
)  # ... and ends the response properly instead of cutting the connection

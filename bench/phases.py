"""The phases of a run, in order, each returning its raw measurements. `shared` phases measure one long-lived
bridge; the others start their own once it has stopped, so that nothing else runs on the bridge's core."""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.procs import Child
from bench.session import Session

_Runs = dict[str, Any]


def throughput(s: Session, bridge: Child, runs: _Runs) -> Any:
    """M1, M2: closed-loop rounds of the bridge, the direct client and the SDK; then grpc.aio alone."""
    sizes = {"requests": s.plan.requests, "concurrency": s.plan.concurrency}
    rounds = [
        {"bridge": s.closed(bridge.port), "direct": s.direct("closed", **sizes), "sdk": s.sdk()}
        for _ in range(s.plan.rounds)
    ]
    with s.raw_grpc(runs["sample"]["event_loop"]) as raw:
        return {"rounds": rounds, "raw": s.closed(raw.port)}


def latency_curve(s: Session, bridge: Child, runs: _Runs) -> Any:
    """M3, M4: open-loop latency of the bridge, the direct client and grpc.aio alone at the same rates."""
    best = statistics.median(r["bridge"]["ok_per_s"] for r in runs["M1"]["rounds"])
    rates = [(None, s.plan.low_rate)] + [(f, max(1, round(f * best))) for f in s.plan.rate_fractions]
    points = []
    with s.raw_grpc(runs["sample"]["event_loop"]) as raw:
        for fraction, rate in rates:
            point = {"fraction": fraction, "offered_rate": rate, "bridge": s.open(bridge.port, rate)}
            point["direct"] = s.direct("open", rate=rate, seconds=s.plan.open_seconds)
            points.append({**point, "raw": s.open(raw.port, rate)})
    return points


def event_latency(s: Session, bridge: Child, runs: _Runs) -> Any:
    """M5: upstream write → gRPC client latency of chunk events, 10 per second on each stream."""
    return s.client("latency", bridge, streams=s.plan.burst_streams, events=s.plan.burst_events // 10)


def events(s: Session, bridge: Child, runs: _Runs) -> Any:
    """M6: events/s through the bridge and from grpc.aio alone on the bridge's event loop, alternating."""
    rounds = []
    for _ in range(max(1, s.plan.rounds - 1)):
        with s.raw_grpc(runs["sample"]["event_loop"]) as raw:
            ceiling = s.burst(raw.port)
        rounds.append({"bridge": s.burst(bridge.port), "raw": ceiling})
    direct = s.direct("events", streams=s.plan.burst_streams, events=s.plan.burst_events)
    return {"rounds": rounds, "direct_sse": direct}


def streams_under_load(s: Session, bridge: Child, runs: _Runs) -> Any:
    """M8: CreateTask latency at the low rate with a fifth of M7's streams open, and with none."""
    without = s.open(bridge.port, s.plan.low_rate)
    # Opened gently: M8 asks what open streams cost calls, not how fast they open (that is M7).
    with s.hold_streams(bridge, s.plan.m7_streams // 5, 200) as holder:
        loaded = s.open(bridge.port, s.plan.low_rate)
        return {"without": without, "with": loaded, "streams": holder.finish()}


def idle_streams(s: Session, bridge: Child, runs: _Runs) -> Any:
    """M7: idle StreamEvents opened at `m7_rate`/s in a fresh bridge; errors and the bridge's RSS."""
    with (
        s.bridge("bridge-m7") as fresh,
        s.hold_streams(fresh, s.plan.m7_streams, s.plan.m7_rate, hold=2.0) as h,
    ):
        return h.finish()


def cycles(s: Session, bridge: Child, runs: _Runs) -> Any:
    """M9: RSS growth of a fresh bridge over open/cancel cycles, after warm-up."""
    with s.bridge("bridge-m9") as fresh:
        return s.client("cycles", fresh, cycles=s.plan.m9_cycles, warm_up=s.plan.m9_cycles // 10)


def workers(s: Session, bridge: Child, runs: _Runs) -> Any:
    """M10: `--workers 2` against one worker, given both cores, h2load and the upstream unpinned."""
    found: dict[str, list[Any]] = {"1": [], "2": []}
    for count in ("1", "2", "1", "2"):
        with s.bridge(f"bridge-w{count}", "--workers", count, cores=None) as fresh:
            time.sleep(1.0)
            found[count].append(s.closed(fresh.port, cores=None, clients=8))
    return found


@dataclass(frozen=True)
class Phase:
    """One step of a run: its key in the plan and the results, its title, and what it measures."""

    key: str
    title: str
    measure: Callable[[Session, Child, _Runs], Any]
    shared: bool = True


PHASES = (
    Phase("M1", "CreateTask max throughput (M1, M2)", throughput),
    Phase("M3", "CreateTask latency vs offered rate (M3, M4)", latency_curve),
    Phase("M5", "event latency (M5)", event_latency),
    Phase("M6", "events per second (M6)", events),
    Phase("M8", "CreateTask with open streams (M8)", streams_under_load),
    Phase("M7", "idle streams (M7)", idle_streams, shared=False),
    Phase("M9", "open/cancel cycles (M9)", cycles, shared=False),
    Phase("M10", "workers (M10)", workers, shared=False),
)

"""How big a benchmark run is: the `smoke` run of the test suite, the `default` of `make bench`, and `full`.

`default` keeps `make bench` within about fifteen minutes on two cores: it runs M9 with 20,000 open/cancel
cycles instead of the 100,000 the target names (`full` runs them all) and every other figure at full size.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PLANS", "Plan"]


@dataclass(frozen=True)
class Plan:
    """Sizes of every measurement of one run."""

    name: str
    rounds: int
    """Alternating rounds (bridge, direct client, SDK) of the closed-loop CreateTask runs; medians count."""
    concurrency: int
    """Calls in flight in closed-loop runs, for the bridge and the baselines alike."""
    bridge_requests: int
    direct_requests: int
    sdk_requests: int
    sdk_concurrency: int
    upstream_requests: int
    """Requests of each upstream ceiling run."""
    low_rate: float
    """Offered CreateTask rate (calls/s) of the low-load latency runs (M3, M8)."""
    open_seconds: float
    """Length of each open-loop run, after one second of warm-up."""
    rate_fractions: tuple[float, ...]
    """Offered rates of the latency curve, as fractions of the bridge's maximum rate (0.5 gives M4)."""
    m5_streams: int
    m5_hz: int
    m5_events: int
    burst_streams: int
    burst_events: int
    m7_streams: int
    m7_rate: float
    """Offered open rate of M7. Above the 1,000/s the target names: the achieved rate counts until the last
    stream's first event, so an offer of exactly 1,000/s could never measure 1,000/s."""
    m8_streams: int
    m8_rate: float
    m9_cycles: int
    m9_warm_up: int
    m10: bool
    sdk_events: bool
    levers: bool
    profiles: bool
    proposals: bool


PLANS = {
    "smoke": Plan(
        name="smoke",
        rounds=1,
        concurrency=10,
        bridge_requests=200,
        direct_requests=200,
        sdk_requests=10,
        sdk_concurrency=5,
        upstream_requests=500,
        low_rate=50,
        open_seconds=1.0,
        rate_fractions=(),
        m5_streams=5,
        m5_hz=20,
        m5_events=10,
        burst_streams=2,
        burst_events=50,
        m7_streams=50,
        m7_rate=200,
        m8_streams=20,
        m8_rate=100,
        m9_cycles=200,
        m9_warm_up=50,
        m10=False,
        sdk_events=False,
        levers=False,
        profiles=False,
        proposals=False,
    ),
    "default": Plan(
        name="default",
        rounds=3,
        concurrency=100,
        bridge_requests=6000,
        direct_requests=6000,
        sdk_requests=300,
        sdk_concurrency=100,
        upstream_requests=20_000,
        low_rate=100,
        open_seconds=6.0,
        rate_fractions=(0.1, 0.25, 0.5, 0.75, 0.9),
        m5_streams=100,
        m5_hz=10,
        m5_events=100,
        burst_streams=100,
        burst_events=1000,
        m7_streams=10_000,
        m7_rate=1250,
        m8_streams=2000,
        m8_rate=200,
        m9_cycles=20_000,
        m9_warm_up=2000,
        m10=True,
        sdk_events=True,
        levers=True,
        profiles=True,
        proposals=True,
    ),
}
PLANS["full"] = Plan(
    **{**PLANS["default"].__dict__, "name": "full", "m9_cycles": 100_000, "m9_warm_up": 5000}
)

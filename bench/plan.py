"""How big a run is: `smoke` (the test suite), `quick` (M1, M6 and M7 in under a minute: to compare two
commits), `default` (`make bench`, about six minutes) and `full` (M9 at the 100,000 cycles it names)."""

from dataclasses import dataclass
from typing import Any

_ALL = ("M1", "M3", "M5", "M6", "M7", "M8", "M9", "M10")


@dataclass(frozen=True)
class Plan:
    """Sizes of every measurement of one run (the table below says what each is)."""

    name: str
    phases: tuple[str, ...]
    rounds: int
    concurrency: int
    requests: int
    low_rate: int
    open_seconds: float
    rate_fractions: tuple[float, ...]
    burst_streams: int
    burst_events: int
    m7_streams: int
    m7_rate: int
    m9_cycles: int


# M1 also measures M2, and M3 also M4 (M3 needs M1). Rounds alternate bridge and baselines; medians count.
# `low_rate` is the calls/s of M3 and M8; open loops last `open_seconds` after one second of warm-up; the
# latency curve adds `rate_fractions` of the bridge's best rate. M7 offers more than the 1,000 opens/s its
# target names: the rate achieved counts until the last stream's first event. The SDK makes a twentieth of the
# requests; M5 reads a tenth of `burst_events` on each burst stream; M8 holds a fifth of M7's streams; M9
# warms up for a tenth of its cycles.
_CURVE = (0.1, 0.25, 0.5, 0.75, 0.9)
_SIZES: dict[str, tuple[Any, ...]] = {
    #                  smoke      quick               default   full
    "phases":         (_ALL[:-1], ("M1", "M6", "M7"), _ALL,     _ALL),
    "rounds":         (1,         1,                  3,        3),
    "concurrency":    (10,        100,                100,      100),
    "requests":       (200,       6000,               6000,     6000),
    "low_rate":       (50,        100,                100,      100),
    "open_seconds":   (1.0,       6.0,                6.0,      6.0),
    "rate_fractions": ((),        (),                 _CURVE,   _CURVE),
    "burst_streams":  (2,         100,                100,      100),
    "burst_events":   (50,        1000,               1000,     1000),
    "m7_streams":     (50,        10_000,             10_000,   10_000),
    "m7_rate":        (200,       1250,               1250,     1250),
    "m9_cycles":      (200,       20_000,             20_000,   100_000),
}  # fmt: skip
PLANS = {
    name: Plan(name, **{field: values[i] for field, values in _SIZES.items()})
    for i, name in enumerate(("smoke", "quick", "default", "full"))
}

"""Latency percentiles, the one summary every benchmark reports."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Percentiles", "percentiles"]


@dataclass(frozen=True)
class Percentiles:
    """Count, p50, p90, p99, p99.9 and max of a sample, in milliseconds."""

    count: int
    p50: float
    p90: float
    p99: float
    p999: float
    max: float
    mean: float

    def as_dict(self) -> dict[str, float]:
        """The figures rounded to microseconds."""
        return {
            "count": self.count,
            "p50": round(self.p50, 3),
            "p90": round(self.p90, 3),
            "p99": round(self.p99, 3),
            "p99.9": round(self.p999, 3),
            "max": round(self.max, 3),
            "mean": round(self.mean, 3),
        }


def _rank(ordered: Sequence[float], fraction: float) -> float:
    # Nearest rank: the smallest value with at least `fraction` of the sample at or below it.
    index = max(0, math.ceil(fraction * len(ordered)) - 1)
    return ordered[index]


def percentiles(sample_ms: Sequence[float]) -> Percentiles:
    """Summarise latencies in milliseconds; an empty sample gives NaNs."""
    if not sample_ms:
        nan = float("nan")
        return Percentiles(0, nan, nan, nan, nan, nan, nan)
    ordered = sorted(sample_ms)
    return Percentiles(
        count=len(ordered),
        p50=_rank(ordered, 0.50),
        p90=_rank(ordered, 0.90),
        p99=_rank(ordered, 0.99),
        p999=_rank(ordered, 0.999),
        max=ordered[-1],
        mean=sum(ordered) / len(ordered),
    )
